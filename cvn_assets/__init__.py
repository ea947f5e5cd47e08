"""cvn_assets: CVNTrade s43 campaigns and operating supervision on Dagster."""
