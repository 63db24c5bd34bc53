"""Built-in stages, one module each. Importing this package registers them."""
from dataprep.stages.backtranslate import Backtranslate as backtranslate
from dataprep.stages.bio import to_bio2
from dataprep.stages.dedup import ExactDedup as exact_dedup
from dataprep.stages.normalize import normalize
from dataprep.stages.ppl import PplScore as ppl_score
from dataprep.stages.ppl_filter import PplFilter as ppl_filter
from dataprep.stages.quality import quality_score
from dataprep.stages.quality_filter import fit_quality, quality_filter
from dataprep.stages.rebalance import Rebalance as rebalance
from dataprep.stages.split import Split as split

__all__ = ["normalize", "exact_dedup", "split", "to_bio2", "rebalance", "ppl_score", "ppl_filter",
           "backtranslate", "quality_score", "quality_filter", "fit_quality"]
