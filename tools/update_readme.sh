#!/bin/sh
# Regenerate every measured table of README.md and docs/*.md with srlab's own commands. Each
# command writes the one file whose <!-- srlab:NAME --> ... <!-- /srlab:NAME --> markers hold
# its section (--readme FILE takes any markdown file with the markers). Scores measured by
# `srlab ship` are reused from out/score-cache when the weights and images are the same.
# Usage (from the repository root, after shipping weights):
#   tools/update_readme.sh         the protocol tables (README.md, docs/benchmarks.md, docs/studies.md)
#   tools/update_readme.sh real    only the real-world tracks (README.md, docs/real-world.md): slow
# Not here, because they take longer or test more than tables: the Performance section
# (srlab bench -m span-fast -m span -m espcn -m srcnn --repeats 21 -o out/bench --readme
# docs/benchmarks.md --section performance; the default 7 repeats proved too noisy here for
# a ratio near 1.1x), the Reliability section (python tools/reliability_report.py
# --readme docs/benchmarks.md) and the Many images scaling table (python
# tools/cluster_scaling.py -n 200 --warm 20 --repeats 2 --readme docs/many-images.md
# --figure docs/cluster-scaling.png; a quiet machine).
set -eu
B=${SRLAB_SHARED:-../shared}/datasets/benchmark
ALL="-d $B/Set5 -d $B/Set14 -d $B/BSD100 -d $B/Urban100"
S=${SRLAB:-.venv/bin/srlab}
P=${PYTHON:-.venv/bin/python}
PEERS="-m bicubic-matlab -m opencv-espcn -m opencv-fsrcnn"
README=README.md
BENCH=docs/benchmarks.md      # protocol, every benchmark table, performance, reliability
STUDIES=docs/studies.md       # the report-network studies
REAL=docs/real-world.md       # span-real, auto, the degraded tracks

if [ "${1:-}" != real ]; then
# README.md: the models table
$S models --readme $README

# docs/benchmarks.md
$S benchmark -m bicubic-matlab -s 2 -s 3 -s 4 -d $B/Set5 -d $B/Set14 -o out/bench-bicubic --readme $BENCH --section bicubic
$P tools/published_table.py --readme $BENCH
$S benchmark -m span -m span+ -s 4 -d $B/Set5 -d $B/Set14 -d $B/Urban100 -o out/self-ensemble --readme $BENCH --section self-ensemble
$S benchmark $PEERS -m span-fast -m span -m srcnn -m espcn -m up-transposed -m up-resize-nearest -m up-resize-bilinear -m up-subpixel -m fcn-upsample -m fcn-residual -m fcn-d2s -m fcn-multi -m srgan -s 4 $ALL -o out/bench-x4 --readme $BENCH --section bench-x4
$S benchmark $PEERS -m span-fast -m span -s 3 $ALL -o out/bench-x3 --readme $BENCH --section bench-x3
PYTHONPATH=src $P tools/scale_via.py -m span -m span-fast -d $B/Set14 -d $B/BSD100 --readme $BENCH
$S benchmark $PEERS -m span-fast -m span -m srcnn -m espcn -m up-transposed -m up-resize-nearest -m up-resize-bilinear -m up-subpixel -m fcn-multi -s 2 $ALL -o out/bench-x2 --readme $BENCH --section bench-x2
$S benchmark -m bicubic-matlab -m vdsr -m autoencoder -s 2 -s 4 -d $B/Set5 -d $B/Set14 -d $B/BSD100 -o out/bench-hr --readme $BENCH --section bench-hr
# the published peers through ncnn (the 'peers' extra): Set5 x4 beside span (realesrgan-x4plus
# is RRDBNet, 16.7M parameters: minutes even on Set5)
$S benchmark -m bicubic-matlab -m span -m span-ch48 -m span-ch52 -m realesr-animevideov3 -m realesrgan-x4plus -s 4 -d $B/Set5 --gmsd -o out/peers-x4 --readme $BENCH --section peers-x4
$S bench -m span-real -m span-real-gan -m realesr-animevideov3 -m realesrgan-x4plus -s 4 --backend torch --backend onnx --size 96x64 --repeats 3 --threads 2 --no-sizes --no-threads -o out/bench-peers --readme $BENCH --section peers-speed

# docs/studies.md
$S benchmark -m bicubic-matlab -m vdsr-5 -m vdsr-10 -m vdsr-15 -m vdsr -s 2 -d $B/Set5 -d $B/Set14 -o out/vdsr-depth --readme $STUDIES --section vdsr-depth
$P tools/upsampling_study.py --scale 4 --readme $STUDIES
$P tools/upsampling_study.py --scale 2 --readme $STUDIES
$S benchmark -m bicubic-matlab -m fcn-upsample -m fcn-residual -m fcn-dilated -m fcn-d2s -m fcn-multi -s 4 $ALL -o out/fcn-study --readme $STUDIES --section fcn-study
$S benchmark -m bicubic-matlab -m srgan -m span -s 4 $ALL --gmsd -o out/srgan --readme $STUDIES --section srgan
exit 0
fi

# Real-world tracks (slow: every model on every degraded input; span-real must ship at the
# scale, auto too). The x4 table goes into README.md and docs/real-world.md; the second run
# reuses the first one's cached scores, except auto's (never cached: its choice per image
# depends on the estimator's code), so each footer names the command that wrote it.
$S benchmark -m bicubic-matlab -m opencv-espcn -m span -m span-real -m auto -s 4 -d $B/Set14 -d $B/BSD100 -d $B/Urban100 --degrade clean --degrade jpeg75 --degrade noise10 --degrade blur+jpeg75 -o out/real-x4 --readme $README --section real-x4
$S benchmark -m bicubic-matlab -m opencv-espcn -m span -m span-real -m auto -s 4 -d $B/Set14 -d $B/BSD100 -d $B/Urban100 --degrade clean --degrade jpeg75 --degrade noise10 --degrade blur+jpeg75 -o out/real-x4 --readme $REAL --section real-x4 --strip docs/real-world-jpeg75-x4.png
$S benchmark -m bicubic-matlab -m opencv-espcn -m realesr-animevideov3 -m span -m span-real -m auto -s 2 -d $B/Set14 -d $B/BSD100 -d $B/Urban100 --degrade clean --degrade jpeg75 --degrade noise10 --degrade blur+jpeg75 -o out/real-x2 --readme $REAL --section real-x2
# The published peers (the 'peers' extra) beside srlab's, on Set14 only, in a table of its own
# (never a blank in the all-set table): realesrgan-x4plus (RRDBNet, 16.7M parameters) costs
# ~6 CPU-seconds per Set14 image on one thread here (338 s of model time for the 56 images of
# the four tracks, load 1.7-2.9; 0.038 output Mpx/s), so ~45 min per track over the three
# sets (Urban100 ~35 min), ~3 h for the four tracks. Every image's scores are cached as soon as measured, so a long row is
# computed in pieces: add --budget 540 and run the same line again while it exits with 3.
# Every track of the real-world tables, with the outputs' NIQE (no-reference) beside them,
# and span-real-gan (srlab's GAN stage) beside the GAN peers.
PEER_TRACKS="--degrade clean --degrade jpeg75 --degrade noise10 --degrade blur+jpeg75 --degrade real --degrade jpeg60+99 --degrade jpeg50+resize0.75 --degrade camnoise5 --niqe"
$S benchmark -m bicubic-matlab -m opencv-espcn -m span -m span-real -m auto -m span-real-gan -m span-ch48 -m realesr-animevideov3 -m realesrgan-x4plus -s 4 -d $B/Set14 $PEER_TRACKS --threads 1 -o out/real-x4-peers --readme $README --section real-x4-peers
$S benchmark -m bicubic-matlab -m opencv-espcn -m span -m span-real -m auto -m span-real-gan -m span-ch48 -m realesr-animevideov3 -m realesrgan-x4plus -s 4 -d $B/Set14 $PEER_TRACKS --threads 1 -o out/real-x4-peers --readme $REAL --section real-x4-peers
# RealSRSet photos (no ground truth): the same crop through each model (-m adds a column)
R=${SRLAB_SHARED:-../shared}/datasets/real/RealSRSet
$S strip $R/Lincoln.png@60,56 $R/oldphoto2.png@60,62 $R/tiger.png@154,164 -m bicubic-matlab -m span-real -m span-real-gan -m realesr-animevideov3 -m realesrgan-x4plus -s 4 --crop 36 --threads 1 -o docs/real-world-photos-x4.png
# the clean protocol: auto against span on all four sets at both scales (clean input must
# still get the clean model)
$S benchmark -m span -m auto -s 4 -s 2 $ALL -o out/real-clean --readme $REAL --section real-clean
# the estimator's confusion table on its labelled set (made from training images only)
$S inspect --eval --readme $REAL --section estimator
