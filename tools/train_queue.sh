#!/bin/sh
# Train configs one after another on one thread each, resuming any run that has a checkpoint.
# Usage: tools/train_queue.sh configs/a.yaml configs/b.yaml ...   (logs in logs/NAME.log)
set -u
mkdir -p logs
for cfg in "$@"; do
    name=$(basename "$cfg" .yaml)
    run=$(sed -n 's/^  name: *//p' "$cfg" | tail -1)
    if [ -f "runs/$run/summary.json" ]; then echo "skip $name (finished)"; continue; fi
    resume=""; [ -f "runs/$run/checkpoint.pt" ] && resume="--resume"
    echo "$(date +%T) train $name $resume"
    ${SRLAB:-.venv/bin/srlab} train "$cfg" $resume --set run.progress=false > "logs/$name.log" 2>&1 \
        || echo "$(date +%T) FAILED $name (see logs/$name.log)"
done
echo "$(date +%T) queue done"
