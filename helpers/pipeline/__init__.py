"""The five stages run end to end (``python -m helpers run``), and the run report."""
