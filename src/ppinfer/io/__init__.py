"""Files read and written safely: untrusted files with bounds, directories put in place
atomically.

- :mod:`~ppinfer.io.safe_io`: regular files only, sizes checked before reading, no escapes
- :mod:`~ppinfer.io.publish`: write beside, sync, swap into place (export, Parquet output)
"""
