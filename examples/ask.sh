#!/usr/bin/env bash
# Ask a wizd agent one question from bash: socat carries the JSON-RPC lines,
# jq writes and reads them.
#
#     bash examples/ask.sh AGENT "question"
#
# Creates AGENT (on the default provider) if there is none, opens your DM with
# it (or reuses the open one), subscribes to that DM, sends the question, and
# prints the reply when it is stored. Exits 1 if the reply is an error message.
# The socket is $WIZ_SOCKET, else $XDG_RUNTIME_DIR/wiz/wizd.sock, else
# /tmp/wiz-$UID/wizd.sock. The protocol: docs/protocol.md.
set -euo pipefail

for tool in socat jq; do
    command -v "$tool" >/dev/null || { echo "ask.sh: needs $tool" >&2; exit 2; }
done
if [ $# -ne 2 ]; then
    echo "usage: $0 AGENT QUESTION" >&2
    exit 2
fi
agent_name=$1
question=$2
if [ -n "${WIZ_SOCKET:-}" ]; then
    sock=$WIZ_SOCKET
elif [ -n "${XDG_RUNTIME_DIR:-}" ]; then
    sock=$XDG_RUNTIME_DIR/wiz/wizd.sock
else
    sock=/tmp/wiz-$(id -u)/wizd.sock
fi
if [ ! -S "$sock" ]; then
    echo "ask.sh: wizd is not running (no socket at $sock)" >&2
    exit 1
fi

# One connection for the whole conversation: socat as a coprocess, its stdin
# and stdout our two ends of the socket. (Its descriptors do not reach
# subshells, so `call` sets $result instead of printing it.)
coproc WIZ { socat - "UNIX-CONNECT:$sock"; }
next_id=0
notes=()   # notifications that arrived while waiting for a response

# call METHOD PARAMS: sends METHOD(PARAMS), PARAMS a JSON object; sets $result
# to the result, or $error to the error object (and $result to "").
call() {
    next_id=$((next_id + 1))
    jq -cn --argjson id "$next_id" --arg method "$1" --argjson params "$2" \
        '{jsonrpc: "2.0", id: $id, method: $method, params: $params}' >&"${WIZ[1]}"
    local line
    while IFS= read -r line <&"${WIZ[0]}"; do
        if [ "$(jq -r 'has("id")' <<<"$line")" = false ]; then
            notes+=("$line")
        elif [ "$(jq -r '.id' <<<"$line")" = "$next_id" ]; then
            result=$(jq -c '.result // empty' <<<"$line")
            error=$(jq -c '.error // empty' <<<"$line")
            return
        fi
    done
    echo "ask.sh: wizd closed the connection" >&2
    exit 1
}

# fail_on_error: end the script with the error of the last call, if it was one.
fail_on_error() {
    if [ -n "$error" ]; then
        echo "ask.sh: $(jq -r '.message' <<<"$error")" >&2
        exit 1
    fi
}

# must_call METHOD PARAMS: call, but an error ends the script.
must_call() {
    call "$@"
    fail_on_error
}

call agent.get "$(jq -cn --arg name "$agent_name" '{name: $name}')"
if [ -n "$error" ] && [ "$(jq -r '.code' <<<"$error")" = -32001 ]; then  # not found: make one
    must_call agent.create "$(jq -cn --arg name "$agent_name" \
        '{name: $name, role: "helper", backstory: "Made by examples/ask.sh.",
          goal: "Answer briefly."}')"
fi
fail_on_error
agent_id=$(jq -r '.id' <<<"$result")
must_call dm.create "$(jq -cn --arg a "$agent_id" '{participants: [$a], reuse: true}')"
dm_id=$(jq -r '.id' <<<"$result")
# Subscribe before sending, so that the reply cannot come in between.
must_call events.subscribe "$(jq -cn --arg c "$dm_id" '{conversation_id: $c}')"
must_call message.send "$(jq -cn --arg c "$dm_id" --arg q "$question" \
    '{conversation_id: $c, content: $q}')"
sent_id=$(jq -r '.message.id' <<<"$result")

# The reply: the message.created whose reply_to is the sent message (it may
# have come already, while message.send was answered). message.delta
# notifications carry it piece by piece as it is generated; this waits for
# the stored reply.
reply_of() {
    jq -c --arg sent "$sent_id" \
        'select(.method == "message.created" and .params.message.reply_to == $sent)
         | .params.message' <<<"$1"
}
reply=""
for line in "${notes[@]}"; do
    reply=$(reply_of "$line")
    [ -n "$reply" ] && break
done
while [ -z "$reply" ] && IFS= read -r line <&"${WIZ[0]}"; do
    reply=$(reply_of "$line")
done
exec {WIZ[1]}>&-   # hang up: socat ends
if [ -z "$reply" ]; then
    echo "ask.sh: wizd closed the connection" >&2
    exit 1
fi
if [ "$(jq -r '.kind' <<<"$reply")" = error ]; then
    echo "ask.sh: $(jq -r '.content' <<<"$reply")" >&2
    exit 1
fi
jq -r '.content' <<<"$reply"
