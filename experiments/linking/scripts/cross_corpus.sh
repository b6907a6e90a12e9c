#!/usr/bin/env bash
# A probe, not kept: NCBI's KB and ranker with BC5CDR's disease mentions (train + dev) beside NCBI
# train. From the repository root, after `spacy project run ncbi-data .` in experiments/multicorpus
# (experiments/multicorpus/corpus/ncbi_train_multi.spacy) and `spacy project run en_medlink_ncbi`
# (kb/medic_base). The KB goes to experiments/linking/kb/medic_x; the scores to metrics/linking/cross_corpus/.
set -eu
export OMP_NUM_THREADS=1
O=metrics/linking/cross_corpus
TRAIN=experiments/multicorpus/corpus/ncbi_train_multi.spacy
KB=experiments/linking/kb/medic_x
python -m spacy_medlink kb build $KB --medic assets/ctd/CTD_diseases.tsv.gz --train-corpus $TRAIN --train-name ncbi
python -m spacy_medlink kb ranker $KB --base-kb kb/medic_base --train $TRAIN --output $O/ranker_x_oof.json
python -m spacy_medlink benchmark linking $KB --data corpus/ncbi/dev.spacy --train $TRAIN --output $O/ncbi_x_dev.json
python -m spacy_medlink benchmark linking $KB --data corpus/ncbi/test.spacy --train $TRAIN --output $O/ncbi_x_test.json
