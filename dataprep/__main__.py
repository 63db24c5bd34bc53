"""`python -m dataprep` is the `dataprep` command."""
from dataprep.cli import main

main()
