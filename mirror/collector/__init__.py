"""The connected side: `mirror collect` and `mirror resolve`.

run.py drives a collect (resolve, download, sign, write); images.py, chartindex.py and git.py resolve one source
kind each; charts.py and flux.py collect a MirrorSet's charts and fleets; download.py fetches image graphs into
the layout, through the blob cache (cache.py); httpfetch.py fetches chart repositories; incremental.py is
`--since`. Nothing outside cli.py imports this package, and the high side (mirror.importer) never does.
"""
