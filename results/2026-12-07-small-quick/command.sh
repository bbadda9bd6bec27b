#!/bin/bash
# The command scripts/vm ran (on the guest, or natively); it reruns from here.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export SCX_BATTLE_OUT="$here" PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
cd "$here"/../../..
exec "$here"/.bin/study inside "$here"/plan.json --bin "$here"/.bin
