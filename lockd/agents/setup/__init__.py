"""`lockd setup <client>`: lockd merged into an agent client's own config.
edits.py plans and applies; one adapter module per client (claude_code.py);
merge.py holds the pure merge rules; jsonfile.py reads and writes JSON files."""
