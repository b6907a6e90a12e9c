# A probe, not kept: NCBI's KB and ranker with BC5CDR's disease mentions (train + dev) beside
# NCBI train: corpus/ncbi/train_bc5cdr.spacy, written by `spacy project run multi-ncbi-data`.
export OMP_NUM_THREADS=1
O=metrics/linking/cross_corpus
python -m spacy_medlink kb build /tmp/kbx/medic_x --medic assets/ctd/CTD_diseases.tsv.gz --train-corpus corpus/ncbi/train_bc5cdr.spacy --train-name ncbi
python -m spacy_medlink kb ranker /tmp/kbx/medic_x --base-kb kb/medic_base --train corpus/ncbi/train_bc5cdr.spacy --output $O/ranker_x_oof.json
python -m spacy_medlink benchmark linking /tmp/kbx/medic_x --data corpus/ncbi/dev.spacy --train corpus/ncbi/train_bc5cdr.spacy --output $O/ncbi_x_dev.json
python -m spacy_medlink benchmark linking /tmp/kbx/medic_x --data corpus/ncbi/test.spacy --train corpus/ncbi/train_bc5cdr.spacy --output $O/ncbi_x_test.json
