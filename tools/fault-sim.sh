#!/bin/sh
# The long fault-simulation campaign (docs/TESTING.md, "Fault simulation"):
# the seeded SimFs runs of tests/it/fault_sim (writer, concurrent producers, key rotation,
# compaction, bit flips in sealed segments) over many seeds each.
#   tools/fault-sim.sh            10,000 seeds
#   tools/fault-sim.sh 50000      that many
#   ARGUS_SIM_SEED=123 cargo test --test it fault_sim:: -- --nocapture   replays one
# Pass PROFILE=--release for an optimized build (a separate, long build).
set -eu
cd "$(dirname "$0")/.."
seeds="${1:-10000}"
ARGUS_SIM_SEEDS="$seeds" exec cargo test ${PROFILE:-} --test it fault_sim::seeded -- --nocapture
