#!/usr/bin/env bash
# Profiles (GET/PUT /api/profile, docs/ai.md), on a real server: no profile
# by default; applying batch_inference shows in GET and gives a model loaded
# afterwards its slots; the state file carries it across a restart;
# `serve --profile` overrides it for one run; an unknown name is a 404 with
# the known names; a user file; `nstack ai profile`; the profile_applied event.
. "$(dirname "$0")/lib_server.bash"

export SERVER_PROFILE_FILE="$TMP/state/profile.json"
export SERVER_PROFILES="$TMP/profiles"
cli() { env -u NSTACK_HOST NSTACK_PROFILES="$SERVER_PROFILES" "$NSTACK" "$@"; }
mkdir -p "$SERVER_PROFILES"

start_server --num-parallel 4 || exit 1
H="127.0.0.1:$PORT"

# ---- 1. the default: no profile ----
expect_status "GET /api/profile" 200 GET /api/profile
expect_json "no profile by default" .name null
expect_json "selected by none" .selected_by none
expect_json "the runtime's slots" .runtime.num_parallel 4
expect_json "the built-ins are available" '.available | index("batch_inference") != null' true
if [ -e "$SERVER_PROFILE_FILE" ]; then not_ok "a GET wrote the profile file"; else ok "no profile file yet"; fi

# ---- 2. applying batch_inference ----
expect_status "PUT batch_inference" 200 PUT /api/profile '{"name":"batch_inference"}'
expect_json "its name" .name batch_inference
expect_json "previous" .previous null
expect_json "parallel changed 4 -> 8" '.changed[] | select(.setting == "num_parallel") | "\(.from)->\(.to)"' "4->8"
expect_json "applies to models loaded from now on" '.changed[] | select(.setting == "num_parallel") | .applies_to' \
    "models loaded from now on"
expect_json "in effect" '.in_effect | sort | join(",")' "auto_unload_idle,ctx,max_batch,parallel"
expect_json "honest about the rest" '.note | startswith("recorded, not yet enforced: vram_reserve")' true
expect_status "GET after PUT" 200 GET /api/profile
expect_json "GET shows it" .name batch_inference
expect_json "selected by the api" .selected_by api
expect_json "runtime slots 8" .runtime.num_parallel 8
expect_json "runtime batch 2048" .runtime.num_batch 2048
expect_eq "the state file has it" batch_inference "$(jq -r .name "$SERVER_PROFILE_FILE" 2>&1)"
expect_status "load demo" 200 POST /api/load '{"model":"demo"}'
expect_status "ps" 200 GET /api/ps
expect_json "a model loaded afterwards has 8 slots" '.models[0].num_parallel' 8

# ---- 3. bad requests ----
expect_status "unknown profile" 404 PUT /api/profile '{"name":"nope"}'
expect_json "the 404 lists the names" \
    '.error | contains("unknown profile \"nope\"") and contains("local_llm") and contains("image_generation")' true
expect_status "no name" 400 PUT /api/profile '{}'
expect_status "a number" 400 PUT /api/profile '{"name":3}'
expect_status "invalid JSON" 400 PUT /api/profile '{"name":'
expect_status "still batch_inference" 200 GET /api/profile
expect_json "unchanged" .name batch_inference

# ---- 4. a user file, and a broken one ----
printf '[profile]\ndescription = "mine"\nparallel = 3\nvram_reserve = "2GiB"\n' >"$SERVER_PROFILES/mine.toml"
printf '[profile]\nparallel = 3\nturbo = true\n' >"$SERVER_PROFILES/broken.toml"
expect_status "PUT mine" 200 PUT /api/profile '{"name":"mine"}'
expect_json "mine applied" .name mine
expect_json "previous batch_inference" .previous batch_inference
expect_json "fields left out return to the server's" .runtime.num_batch 512
expect_json "slots 3" .runtime.num_parallel 3
expect_status "a broken file is a 422" 422 PUT /api/profile '{"name":"broken"}'
expect_json "with its line and key" '.error | endswith("broken.toml:3: profile.turbo: unknown key")' true

# ---- 5. the event ----
expect_status "batch_inference again" 200 PUT /api/profile '{"name":"batch_inference"}'
timeout 2 curl -sN "$BASE/api/events?replay=10" >"$TMP/events.txt"
last="$(sed -n 's/^data: //p' "$TMP/events.txt" | jq -c 'select(.kind == "profile_applied")' | tail -n 1)"
expect_eq "a profile_applied event" profile_applied "$(echo "$last" | jq -r .kind)"
expect_eq "its name" batch_inference "$(echo "$last" | jq -r .detail.name)"
expect_eq "its previous" mine "$(echo "$last" | jq -r .detail.previous)"

# ---- 6. the CLI ----
out="$(cli ai profile --host "$H")"
echo "$out" | grep -q '^\* batch_inference ' && ok "the list marks the active one" || not_ok "list: $out"
echo "$out" | grep -q '^  mine ' && ok "the list has the user file" || not_ok "list: $out"
expect_eq "list --json" batch_inference "$(cli ai profile --json --host "$H" | jq -r .active)"
out="$(cli ai profile local_llm --host "$H")"
[[ "$out" == *"profile local_llm applied (was batch_inference)"* && "$out" == *"num_parallel 8 -> 2"* ]] &&
    ok "apply prints what changed" || not_ok "apply: $out"
expect_eq "apply --json" image_generation "$(cli ai profile image_generation --json --host "$H" | jq -r .name)"
out="$(cli ai profile --show batch_inference)"
[[ "$out" == *"parallel"*"8 slots"* && "$out" == *"recorded, not yet enforced"* ]] && ok "--show" || not_ok "--show: $out"
expect_eq "--show --json" 3 "$(cli ai profile --show mine --json | jq -r .fields.parallel)"
expect_fail "apply an unknown one" 1 "unknown profile \"nope\"" -- cli ai profile nope --host "$H"
expect_fail "--show an unknown one" 1 "unknown profile \"nope\"" -- cli ai profile --show nope

# ---- 7. a restart keeps it; --profile overrides for one run ----
expect_status "batch_inference before the restart" 200 PUT /api/profile '{"name":"batch_inference"}'
stop_server
start_server --num-parallel 4 || exit 1
expect_status "GET after the restart" 200 GET /api/profile
expect_json "still batch_inference" .name batch_inference
expect_json "from the state file" .selected_by "state file"
expect_json "and in effect" .runtime.num_parallel 8
stop_server
start_server --num-parallel 4 --profile local_llm || exit 1
expect_status "GET with --profile" 200 GET /api/profile
expect_json "--profile wins" .name local_llm
expect_json "selected by --profile" .selected_by --profile
expect_json "its slots" .runtime.num_parallel 2
expect_status "load demo" 200 POST /api/load '{"model":"demo"}'
expect_status "ps" 200 GET /api/ps
expect_json "the model has 2 slots" '.models[0].num_parallel' 2
expect_eq "the file is untouched" batch_inference "$(jq -r .name "$SERVER_PROFILE_FILE" 2>&1)"
stop_server
if env NSTACK_PROFILES="$SERVER_PROFILES" NSTACK_PROFILE_FILE="$SERVER_PROFILE_FILE" NSTACK_DB=off \
    "$NSTACK" serve --host 127.0.0.1:0 --models "$TMP/models" --profile nope 2>"$TMP/bad.log"; then
    not_ok "serve --profile nope started"
else
    grep -q 'unknown profile "nope"' "$TMP/bad.log" && ok "serve --profile nope fails with the names" ||
        not_ok "serve --profile nope: $(cat "$TMP/bad.log")"
fi

finish
