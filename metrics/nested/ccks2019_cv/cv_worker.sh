#!/usr/bin/env bash
# one worker: claims the next untrained CCKS2019 fold (mkdir lock), trains it on one thread, scores it
cd /work/main
source .venv/bin/activate
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for K in 0 1 2 3 4; do
  mkdir logs/ccks2019_cv/claim_fold$K 2>/dev/null || continue
  echo "$(date +%H:%M) fold$K start" >> logs/ccks2019_cv/cv_progress.txt
  python -m spacy train configs/nested_zh_tok2vec.cfg --output training/ccks2019_nested_cv/fold$K \
    --paths.train corpus/ccks2019/folds/rest$K.spacy --paths.dev corpus/ccks2019/folds/fold$K.spacy \
    --paths.loss_trace training/ccks2019_nested_cv/fold$K/loss_weights.jsonl \
    --components.nested.queries.corpus ccks2019 --system.seed $K --training.max_steps 1750 --gpu-id -1 \
    > logs/ccks2019_cv_fold$K.log 2>&1
  echo "$(date +%H:%M) fold$K trained rc=$?" >> logs/ccks2019_cv/cv_progress.txt
  for S in dev test; do
    python -m spacy evaluate training/ccks2019_nested_cv/fold$K/model-best corpus/ccks2019/$S.spacy \
      --output metrics/nested/ccks2019_cv/fold${K}_tok2vec_$S.json --gpu-id -1 >> logs/ccks2019_cv_fold$K.log 2>&1
  done
  echo "$(date +%H:%M) fold$K evaluated" >> logs/ccks2019_cv/cv_progress.txt
done
