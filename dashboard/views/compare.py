"""View 6, Compare runs: the ELBO curves and final metrics of several saved runs overlaid, with a note where their
log-likelihoods are not comparable because the data representations differ."""

import pandas as pd
import streamlit as st

from dashboard import figures, state

DEFAULT_SHOWN = 4
COLUMNS = {"name": "run", "dataset": "data", "likelihood": "likelihood", "representation": "data as",
           "latent_dim": "latent", "status": "status", "epochs": "epochs", "test_elbo": "test ELBO (nats)",
           "test_reconstruction": "test E_q[log p(x|z)]", "test_kl": "test KL", "log_px": "log p(x)", "beta": "β",
           "active_units": "active units", "mutual_information": "I_q(x; z) (nats)"}


def render() -> None:
    rows = [r for r in state.saved_runs() if r["status"] != "unfinished" or r.get("test_elbo") is not None]
    if not rows:
        st.info("No saved runs yet. Train a few (e.g. digits under bernoulli, continuous_bernoulli, gaussian and "
                "categorical) and compare them here.")
        return
    names = [r["name"] for r in rows]
    chosen = st.multiselect("Runs to compare", names, default=names[:DEFAULT_SHOWN], key="cmp_runs")
    if not chosen:
        st.info("Pick one or more runs.")
        return
    from vae_tfp.runs import get_run

    compare, curves = state.explain("compare"), state.explain("curves")
    runs = [get_run(n, state.root()) for n in chosen]
    histories = [r.history() for r in runs]
    summaries = [compare.run_summary(r, h) for r, h in zip(runs, histories)]
    note = compare.comparability_note(summaries)
    if note:
        st.warning(note)
    series = [(r.name, curves.history_curves(h)) for r, h in zip(runs, histories)]
    figures.chart(figures.compare_curves(series), config=figures.plot_config("compare-runs"), key="cmp_curves")
    collapse = [(r.name, curves.diagnostics(h)) for r, h in zip(runs, histories)]
    if any(len(d) for _, d in collapse):
        figures.chart(figures.compare_diagnostics(collapse), config=figures.plot_config("compare-collapse"),
                      key="cmp_collapse")
    table = pd.DataFrame(summaries)[list(COLUMNS)].rename(columns=COLUMNS).dropna(axis=1, how="all")
    numbers = {c: st.column_config.NumberColumn(format="%.2f") for c in
               ("test ELBO (nats)", "test E_q[log p(x|z)]", "test KL", "log p(x)", "I_q(x; z) (nats)") if c in table}
    st.dataframe(table, hide_index=True, width="stretch", column_config=numbers)
    st.download_button("Download the table (CSV)", table.to_csv(index=False), file_name="runs.csv", mime="text/csv",
                       key="dl_compare")
