"""The warehouse tables as external assets, so the UI shows what each report reads."""
