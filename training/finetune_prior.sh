#!/usr/bin/env bash
# Fine-tunes an exported NCSN prior on another patch set, exporting a snapshot every SEG
# steps to runs/snap/<name>_<step> for select_priors.py (choose by separation SDR, not loss).
#   training/finetune_prior.sh NAME DATA_DIR INIT_PRIOR EXTRA_STEPS [SEG]
# e.g. training/finetune_prior.sh voice out/speech_data/tfr/voice/train assets/priors/ncsn_piano 4000 1000
# Resumable: rerun the same line; finished snapshots are skipped and each segment resumes
# from the workdir's last checkpoint (runs/ncsn_<name>). Steps count on from the init
# prior's step (init_from carries it).
set -u
cd "$(dirname "$0")/.."
NAME=$1; DATA=$2; INIT=$3; EXTRA=$4; SEG=${5:-1000}
PY=${PY:-.venv/bin/python}
START=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]+'/config.json'))['step'])" "$INIT")
W=runs/ncsn_${NAME}
mkdir -p runs/snap
for ((s=START+SEG; s<=START+EXTRA; s+=SEG)); do
  if [ -f runs/snap/${NAME}_$s/config.json ]; then continue; fi
  nice -n 5 env TF_CPP_MIN_LOG_LEVEL=3 $PY train_ncsn.py --dataset=melspec \
    --data_dir=$DATA --workdir=$W --arch=unet --ngf=32 \
    --channel_mult=1,2,2,4 --num_res_blocks=1 --variant=v1 --batch_size=32 --steps=$s \
    --eval_every=100000 --checkpoint_every=250 --log_every=50 --seed=0 --ema_decay=0.995 \
    --learning_rate=2e-4 --init_from=$INIT || exit 1
  nice -n 5 env TF_CPP_MIN_LOG_LEVEL=3 $PY train_ncsn.py --mode=export \
    --workdir=$W --prior=runs/snap/${NAME}_$s || exit 1
done
