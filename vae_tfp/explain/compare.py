"""The Compare runs view: one summary row per saved run, and a note where runs' log-likelihoods are not comparable
because they model different data representations. No TensorFlow (the curves come from `explain.curves`)."""

REPRESENTATION_WORDS = {
    "binary": "binarized pixels (a probability mass over {0, 1} per pixel)",
    "unit": "intensities in [0, 1] (a density on the unit interval)",
    "real": "real values (a density on the real line)",
    "levels": "integer grey levels (a probability mass over K levels)",
}


def run_summary(run, records=None) -> dict:
    """What the comparison table shows for one saved run: its setup, status, test elbo / reconstruction / kl, and
    the last diagnostics (active units, I_q(x; z)). `records`: the run's history when already read."""
    from vae_tfp.explain.curves import diagnostics

    config, metrics = run.config(), run.metrics()
    last = diagnostics(run.history() if records is None else records).last() or {}
    try:
        info = run.data_info()
    except (OSError, ValueError):
        info = {}
    test = metrics.get("test") or {}
    return {"name": run.name, "dataset": config.dataset, "likelihood": config.likelihood,
            "latent_dim": config.latent_dim, "representation": info.get("representation"),
            "levels": info.get("levels"), "binarization": config.binarization if config.likelihood == "bernoulli"
            else None, "status": metrics.get("status", "unfinished"), "epochs": metrics.get("epochs"),
            "test_elbo": metrics.get("test_elbo"), "test_reconstruction": test.get("reconstruction"),
            "test_kl": test.get("kl"), "log_px": metrics.get("log_px"), "beta": config.beta,
            "active_units": last.get("active_units"), "mutual_information": last.get("mutual_information")}


def comparability_note(summaries) -> str | None:
    """A note when the runs' log-likelihoods are not comparable (different data or data representations), or None.

    Log-likelihoods are comparable only on the same data in the same representation: a probability mass over
    binarized pixels, a density over [0, 1] and a density over the real line are different quantities, in
    different units, and a density can exceed 1 (positive log p(x)).
    """
    groups = {}
    for s in summaries:
        key = (s["dataset"], s["representation"], s["levels"], s["binarization"])
        groups.setdefault(key, []).append(s["name"])
    if len(groups) <= 1:
        return None
    lines = []
    for (dataset, representation, levels, binarization), names in groups.items():
        what = REPRESENTATION_WORDS.get(representation, str(representation))
        if representation == "levels":
            what = what.replace("K levels", f"{levels} levels")
        if binarization:
            what += f", binarization {binarization}"
        lines.append(f"{', '.join(names)}: {dataset} as {what}")
    return ("These runs model different data representations, so their ELBOs and log-likelihoods are not "
            "comparable: a probability mass over discrete values (<= 0 nats) and a density over continuous values "
            "(which can exceed 1, so log p(x) > 0) measure different things. Compare runs within a group:\n- "
            + "\n- ".join(lines))
