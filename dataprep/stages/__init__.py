"""Built-in stages, one module each. Importing this package registers them."""
from dataprep.stages.bio import to_bio2
from dataprep.stages.dedup import ExactDedup as exact_dedup
from dataprep.stages.normalize import normalize
from dataprep.stages.split import Split as split

__all__ = ["normalize", "exact_dedup", "split", "to_bio2"]
