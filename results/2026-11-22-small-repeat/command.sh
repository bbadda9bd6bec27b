#!/bin/bash
export SCX_BATTLE_OUT=/work/wt/results/2026-11-22-small-repeat PATH=/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /work/wt
exec scripts/reproduce --inside /work/wt/results/2026-11-22-small-repeat/.bin 128 3 10 146 40 2 
