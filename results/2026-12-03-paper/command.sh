#!/bin/bash
export SCX_BATTLE_OUT=/work/main/results/2026-12-03-paper PATH=/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /work/main
exec scripts/reproduce --inside /work/main/results/2026-12-03-paper/.bin 512 14.5 30 542 60 1 
