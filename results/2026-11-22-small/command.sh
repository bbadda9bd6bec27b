#!/bin/bash
export SCX_BATTLE_OUT=/tmp/repro-small PATH=/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cache/scx-battle/tools/bin:/root/.cache/scx-battle/tools/venv/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.cargo/bin:/root/.pyenv/plugins/pyenv-virtualenv/shims:/root/.pyenv/shims:/root/.pyenv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd /work/bench
scripts/reproduce --inside /tmp/repro-small/.bin 128 3 10 146 
