#!/usr/bin/env bash
# One worker of the CCKS2019 cross-validation: claims the next fold no other worker has claimed
# (a mkdir lock), trains it on one thread and scores it on dev and test, as `cv-fold` does. Start
# one per core to train folds side by side, from experiments/nested after `spacy project run cv-split .`:
#   bash scripts/cv_worker.sh & bash scripts/cv_worker.sh & wait
# then `spacy project run cv-ensemble .`. STEPS overrides the step budget (default: vars.cv_steps).
set -u
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
STEPS=${STEPS:-1750}
mkdir -p training/ccks2019_cv/claims
for K in 0 1 2 3 4; do
  mkdir training/ccks2019_cv/claims/fold$K 2>/dev/null || continue
  python -m spacy train ../../configs/nested_zh_tok2vec.cfg --output training/ccks2019_cv/fold$K \
    --paths.train corpus/ccks2019_folds/rest$K.spacy --paths.dev corpus/ccks2019_folds/fold$K.spacy \
    --paths.loss_trace training/ccks2019_cv/fold$K/loss_weights.jsonl \
    --components.nested.queries.corpus ccks2019 --system.seed $K --training.max_steps $STEPS --gpu-id -1 \
    > training/ccks2019_cv/fold$K.log 2>&1
  for S in dev test; do
    python -m spacy evaluate training/ccks2019_cv/fold$K/model-best ../../corpus/ccks2019/$S.spacy \
      --output ../../metrics/nested/ccks2019_cv/fold${K}_tok2vec_$S.json --gpu-id -1 >> training/ccks2019_cv/fold$K.log 2>&1
  done
done
