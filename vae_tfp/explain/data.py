"""The data of a config exactly as the trainer prepares it (same representation, binarization and seeds).
No TensorFlow."""

from vae_tfp import families
from vae_tfp.config import RunConfig
from vae_tfp.data import Dataset, Prepared, load, prepare


def representation(likelihood: str) -> str:
    """The data representation a likelihood models: "binary", "unit", "real" or "levels" (its registry entry's)."""
    return families.likelihoods.get(likelihood).representation


def prepared_data(config: RunConfig, data_dir=None, dataset: Dataset | None = None) -> tuple[Dataset, Prepared]:
    """(Dataset, Prepared) for `config`: the raw data set (`dataset`, else loaded by the config's name) and its
    conversion for the config's likelihood."""
    if dataset is None:
        dataset = load(config.dataset, data_dir=data_dir, seed=config.seed)
    return dataset, prepare(dataset, representation(config.likelihood), binarization=config.binarization,
                            seed=config.seed)
