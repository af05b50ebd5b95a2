"""Ingestion and data quality: sources in, validated raw Parquet and quarantine out."""
