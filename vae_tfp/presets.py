"""Presets: one-click setups that each show one lesson, and the setup each data set suggests. No TensorFlow.

    suggested(dataset)          RunConfig a data set starts from: the config's defaults and the data set's own
                                (`DatasetInfo.defaults`: a likelihood that fits it, enough epochs to learn, sigma)
    PRESETS["collapse"]         Preset(name, title, lesson, view, settings): what to press and what to look at
    preset_config(name)         the preset's RunConfig (suggested(dataset) with the preset's settings on top)
    preset_query(name)          the preset as link parameters (config fields that differ from the defaults, the view,
                                and `lesson=<name>`), so `?<query>` opens the same setup and view with the lesson's
                                words beside it: every preset is a shareable link

A preset never trains by itself: it fills the sidebar, the person presses Train.
"""

from dataclasses import dataclass, field

from vae_tfp.config import RunConfig
from vae_tfp.datasets.registry import DATASETS


def suggested(dataset: str) -> RunConfig:
    """The config a data set starts from (a name that is not registered, e.g. an upload: the config's defaults)."""
    info = DATASETS.get(dataset)
    return RunConfig(dataset=dataset, **(dict(info.defaults) if info is not None else {}))


@dataclass(frozen=True)
class Preset:
    name: str
    title: str  # the words in the picker
    lesson: str  # what to look at once it has trained (markdown)
    view: str  # the view that shows the lesson
    settings: dict = field(default_factory=dict)  # RunConfig fields over suggested(dataset)

    @property
    def dataset(self) -> str:
        return self.settings.get("dataset", "digits")


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("first_run", "A first VAE on digits (about 10 s)",
           "Train, then open **Reconstructions** and **Prior vs posterior**: decodes of test digits through q(z|x) "
           "and new digits decoded from z ~ p(z). The 2-D latent space is drawn in **Latent space**.",
           "Reconstructions", {"dataset": "digits"}),
    Preset("bernoulli_vs_cb", "Bernoulli vs continuous Bernoulli on the same digits",
           "Train this (continuous Bernoulli on grey digits), then pick *bernoulli* and train again; **Compare runs** "
           "shows both, and says why their log-likelihoods are not comparable: one is a probability of binarized "
           "pixels, the other a density over [0, 1].",
           "Compare runs", {"dataset": "digits", "likelihood": "continuous_bernoulli"}),
    Preset("collapse", "Posterior collapse with β = 4 (watch it happen)",
           "β rises from 0 to 4 over the first 300 epochs (KL warm-up), so the KL weighs ever more: in **Training**, "
           "while it trains, the KL per dimension goes dark one dimension after another, the active units fall from "
           "8 to 0 and I_q(x; z) to 0 (the code stops carrying anything about x). Then **Reconstructions**: every "
           "digit decodes to the same blur. Set β = 1 and train again: **Compare runs** shows both. Free bits "
           "(Objective) keep a floor under each dimension's KL.",
           "Training", {"dataset": "digits", "latent_dim": 8, "beta": 4.0, "warmup_epochs": 300.0, "epochs": 500}),
    Preset("linear_gaussian", "Linear-Gaussian: the exact p(x)",
           "x = W z + b + σ ε with z ~ N(0, I): p(x) = N(b, WᵀW + σ²I) is known in closed form, for the data and for "
           "the model. **What is p(x)?** puts the exact log p(x) beside its estimates; the lab draws both densities.",
           "What is p(x)?", {"dataset": "linear_gaussian_2d", "latent_dim": 1}),
    Preset("moons_mixture", "Two moons: p(x) as a mixture",
           "p(x) = ∫ p(x|z) p(z) dz: in the **Density lab** move K to see the mixture of K Gaussians p(x|z_k), "
           "z_k ~ p(z), approach the model's p(x), next to the data's true density.",
           "Density lab", {"dataset": "two_moons"}),
)}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_config(name: str) -> RunConfig:
    preset = get(name)
    return suggested(preset.dataset).replace(**preset.settings)


LESSON_KEY = "lesson"  # the link parameter naming the preset whose lesson the page shows


def preset_query(name: str, view_key: str = "view") -> dict:
    """The preset's link parameters: the config (as `vae_tfp.sharing` writes it), the view and the lesson."""
    from vae_tfp.sharing import config_to_query

    return {**config_to_query(preset_config(name)), view_key: get(name).view, LESSON_KEY: name}


def lesson_words(name: str) -> str:
    """The lesson as the page shows it (markdown)."""
    preset = get(name)
    return f"**{preset.title}.** {preset.lesson}"
