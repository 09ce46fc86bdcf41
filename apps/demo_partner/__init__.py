"""A demo partner API (CRM/ERP-like) served locally for contract tests and reconciliations."""
