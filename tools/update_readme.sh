#!/bin/sh
# Regenerate every measured README table with srlab's own commands. Scores measured by
# `srlab ship` are reused from out/score-cache when the weights and images are the same.
# Usage: tools/update_readme.sh   (from the repository root, after shipping weights)
# Not here, because they take longer or test more than tables: the Performance section
# (srlab bench -m span-fast -m span -m espcn -m srcnn --repeats 21 -o out/bench --readme
# README.md --section performance; the default 7 repeats proved too noisy here for a
# ratio near 1.1x) and the Reliability section (python tools/reliability_report.py
# --readme README.md).
set -eu
B=${SRLAB_SHARED:-../shared}/datasets/benchmark
ALL="-d $B/Set5 -d $B/Set14 -d $B/BSD100 -d $B/Urban100"
S=${SRLAB:-.venv/bin/srlab}
PEERS="-m bicubic-matlab -m opencv-espcn -m opencv-fsrcnn"
$S models --readme README.md
$S benchmark -m bicubic-matlab -s 2 -s 3 -s 4 -d $B/Set5 -d $B/Set14 -o out/bench-bicubic --readme README.md --section bicubic
${PYTHON:-.venv/bin/python} tools/published_table.py --readme README.md
$S benchmark -m span -m span+ -s 4 -d $B/Set5 -d $B/Set14 -d $B/Urban100 -o out/self-ensemble --readme README.md --section self-ensemble
$S benchmark $PEERS -m span-fast -m span -m srcnn -m espcn -m up-transposed -m up-resize-nearest -m up-resize-bilinear -m up-subpixel -m fcn-upsample -m fcn-residual -m fcn-d2s -m fcn-multi -m srgan -s 4 $ALL -o out/bench-x4 --readme README.md --section bench-x4
$S benchmark $PEERS -m span-fast -m span -s 3 $ALL -o out/bench-x3 --readme README.md --section bench-x3
$S benchmark $PEERS -m span-fast -m span -m srcnn -m espcn -m up-transposed -m up-resize-nearest -m up-resize-bilinear -m up-subpixel -m fcn-multi -s 2 $ALL -o out/bench-x2 --readme README.md --section bench-x2
$S benchmark -m bicubic-matlab -m vdsr -m autoencoder -s 2 -s 4 -d $B/Set5 -d $B/Set14 -d $B/BSD100 -o out/bench-hr --readme README.md --section bench-hr
$S benchmark -m bicubic-matlab -m vdsr-5 -m vdsr-10 -m vdsr-15 -m vdsr -s 2 -d $B/Set5 -d $B/Set14 -o out/vdsr-depth --readme README.md --section vdsr-depth
${PYTHON:-.venv/bin/python} tools/upsampling_study.py --scale 4 --readme README.md
${PYTHON:-.venv/bin/python} tools/upsampling_study.py --scale 2 --readme README.md
$S benchmark -m bicubic-matlab -m fcn-upsample -m fcn-residual -m fcn-d2s -m fcn-multi -s 4 $ALL -o out/fcn-study --readme README.md --section fcn-study
$S benchmark -m bicubic-matlab -m srgan -m span -s 4 $ALL --gmsd -o out/srgan --readme README.md --section srgan
