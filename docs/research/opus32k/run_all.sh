#!/bin/sh
# Reproduces every number in REPORT.md (about 10-15 min on 2 shared cores). Outputs in results/.
set -e
cd "$(dirname "$0")"
PY="nice -n 19 $(cd ../../.. && pwd)/.venv/bin/python"
mkdir -p results
$PY probe_channel.py                                   > results/01_channel.txt
$PY noise_profile.py                                   > results/02_noise_profile.txt
$PY qim_energy.py celt16_1col delta=7,14,20,28         > results/03_energy_celt.md
$PY qim_energy.py wide3_1col wide3_2col wide5_2col oct_2col time_full_1col time_4b_1col time_4b_2col time_8b_1col time_celt_1col delta=10,20 > results/04_energy_other.md
$PY qim_energy.py celt16_1col music delta=7,14,20      > results/05_energy_music.md
$PY stdm.py L=2 nb=16 delta=0.3                        > results/06_stdm_first.md
$PY stdm.py L=1 nb=8 delta=0.8 maxrel=-16.0,-14.0,-12.0,-10.0,0.0 > results/07_stdm_maxrel.md
$PY stdm.py L=1 nb=8 delta=1.2 maxrel=0.0              > results/08_stdm_max.md
$PY stdm.py L=1 nb=8 delta=0.8 maxrel=-12.0 orth=1     > results/09_stdm_orth.md
$PY checks.py                                          > results/10_stdm_channels_music.txt
$PY fracsync.py                                        > results/11_stdm_fracsync.txt
$PY othervoice.py                                      > results/12_stdm_othervoices.txt
for a in "kind=bandpair L=2 delta=6" "kind=bandpair L=2 delta=12" "kind=bandpair L=2 delta=20" "kind=bandpair L=1 delta=12" "kind=bandpair L=4 delta=12" "kind=time L=2 delta=12"; do
  $PY hf_celt.py $a
done                                                   > results/13_hf_celt.md
$PY coexist.py 35.3 0                                  > results/14_coexist.md
$PY coexist.py 35.3 1                                 >> results/14_coexist.md

$PY r2_delta.py 7 14 20                                > results/15_r2_delta.md
for a in "maxrel=0 delta=1.0 seed=2" "maxrel=0 delta=1.0 seed=3" "maxrel=0 delta=1.2 seed=1" "maxrel=0 delta=1.2 seed=2" "maxrel=0 delta=1.2 seed=3" "maxrel=-10 delta=1.2 seed=1"; do
  echo "== $a"; $PY e2e_stdm.py bps=100 $a
done                                                   > results/16_e2e_stdm_extra.txt
for v in en-gb+f3 en-us+m3; do for a in "maxrel=0 delta=1.0" "maxrel=0 delta=1.2"; do
  echo "== voice=$v $a"; $PY e2e_stdm.py bps=100 voice=$v $a
done; done                                             > results/17_e2e_stdm_voices.txt
$PY stdm.py L=1 nb=8 delta=1.0 maxrel=0.0              > results/18_stdm_d10.md
$PY music_stdm.py                                      > results/19_stdm_music.txt
for a in "maxrel=-12" "maxrel=0" "maxrel=-10" "maxrel=0 delta=1.0" "maxrel=-12 seed=2"; do
  echo "== $a"; $PY e2e_stdm.py bps=100 $a
done                                                   > results/20_e2e_stdm_first.txt
echo done
