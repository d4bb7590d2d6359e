#!/usr/bin/env bash
# (gohot: a copy of the environment's ../shared/realkube.sh, kept in the repository so a clone can start the
# cluster its tests use; .ci/run and `GOHOT_TEST_CLUSTER=1 scripts/test` start it.)
# realkube.sh - a REAL single-node Kubernetes cluster (v1.20.2) on one Debian 12 (bookworm) machine, built from
# Debian's own `kubernetes` source package, for testing Kubernetes dev tools end to end with no internet registry
# (no Docker Hub, no k8s.gcr.io, no Go module proxy): only Debian's apt repositories are needed.
#
# ==== NOTES (keep these in sync with what the script does) ====
#
# Everything lives under $RK = ${REALKUBE_HOME:-$HOME/realkube} (binaries, certificates, logs, cluster state).
#
# USE IT (as root)
#   realkube.sh up          # apt install + build (cached) + start; idempotent (a running cluster is left as is)
#   realkube.sh status      # exit 0 when every process, the registry, the API, the node and the kubelet are up
#   realkube.sh demo [--keep]  # end-to-end self test, see WHAT WORKS; deletes its namespace unless --keep
#   realkube.sh stop        # stops exactly what `up` started (saved PIDs + exe check), removes pod sandboxes via
#                           # CRI, unmounts kubelet volumes, undoes the host changes below; data is kept
#   realkube.sh restart | start | build | env | kubectl ARGS...
#   First `up` builds for ~4 min: run it in the background and poll:
#     mkdir -p $RK/logs; nohup scripts/realkube.sh up > $RK/logs/up.log 2>&1 &
#     scripts/realkube.sh status
#   Then:
#     export KUBECONFIG=$RK/kubeconfig   # current-context kind-realkube (cluster and user kind-realkube)
#     export PATH=$RK/bin:$PATH          # kubectl v1.20.2 built here (prefer it to /usr/bin/kubectl)
#   API server https://127.0.0.1:6443; node `realkube`, InternalIP 127.0.0.1.
#   Registry (plain HTTP, loopback only) 127.0.0.1:5000:
#     docker build -t 127.0.0.1:5000/app:dev . && docker push 127.0.0.1:5000/app:dev   # Docker allows HTTP to 127/8
#     (or: skopeo copy --dest-tls-verify=false ... docker://127.0.0.1:5000/app:dev)
#     then `image: 127.0.0.1:5000/app:dev` in a pod; the cluster's containerd pulls it over HTTP.
#   docker.io is mapped to the same registry: `image: busybox:1.36` is pulled as 127.0.0.1:5000/library/busybox:1.36,
#   so push public-looking images there; nothing is ever fetched from Docker Hub. Other registries fail to pull.
#   kube-public/local-registry-hosting (KEP-1755 ConfigMap) advertises 127.0.0.1:5000 to dev tools.
#   Wipe all cluster state (keeps the build): `realkube.sh stop && rm -rf $RK/{etcd,containerd,kubelet,cni}`
#
# WHAT RUNS (background processes; logs $RK/logs/NAME.log; PIDs $RK/run/NAME.pid)
#   registry       Debian docker-registry 2.8.2 on 127.0.0.1:5000, storage $RK/registry/data
#   containerd     Debian containerd 1.6.20, a SEPARATE instance: socket /run/realkube-containerd/containerd.sock,
#                  root $RK/containerd/root, state /run/realkube-containerd/state, runc root
#                  /run/realkube-containerd/runc, CRI namespace k8s.io, overlayfs, cgroupfs driver (cgroup v1 here,
#                  as Docker). Docker's containerd (/var/run/docker/containerd) and the Docker daemon are not touched.
#   etcd           Debian etcd-server 3.4.23, http://127.0.0.1:12379 (peer 12380), data $RK/etcd
#   kube-apiserver 127.0.0.1:6443 only (no insecure port); authz Node,RBAC; NodeRestriction; front-proxy CA set up
#   kube-controller-manager 127.0.0.1:10257, kube-scheduler 127.0.0.1:10259 (no leader election)
#   kubelet        127.0.0.1:10250 (healthz 127.0.0.1:10248, no read-only port), --node-ip=127.0.0.1, CRI v1alpha2
#                  to the containerd above, root dir $RK/kubelet, cgroupfs, failSwapOn=false
#   Pod network: CNI bridge `rkbr0` + host-local IPAM 10.244.0.0/24 (+ loopback, added by containerd). Pods get NO
#   default route, so nothing a pod sends can leave the machine; pod-to-pod and host-to-pod work on the bridge.
#   Service CIDR 10.96.0.0/16. Certificates (openssl, RSA 2048, 10 years) in $RK/pki.
#   Pause image 127.0.0.1:5000/pause:3.4: built here from the k8s tree's build/pause/linux/pause.c (gcc -static),
#   packed with umoci, pushed with skopeo; containerd's sandbox_image points to it.
#
# WHAT WORKS (all checked on this machine; `demo` re-checks the first line)
#   server-side apply; Deployment -> ReplicaSet -> 2 Pods Ready from an image built with `docker build` FROM scratch
#   (Debian busybox-static) and `docker push`ed to 127.0.0.1:5000; `echo hi | kubectl exec -i POD -- cat`;
#   `kubectl logs` (and -f); `kubectl port-forward` to pod and to svc/NAME, curl via 127.0.0.1; deleting a pod ->
#   ReplicaSet replaces it. Also: Jobs, init containers, emptyDir, ConfigMap/Secret env+volumes, Guaranteed QoS
#   pods, privileged pods + hostPath, exec readiness probes, `kubectl exec -it` (tty), `kubectl cp`, attach,
#   rollout restart, kubectl diff (server dry-run), watch, CRDs + custom resources, ServiceAccount tokens,
#   node proxy (/api/v1/nodes/realkube/proxy/stats/summary), pod-to-pod TCP over the bridge.
# WHAT DOES NOT / CAVEATS
#   - No kube-proxy: ClusterIP/NodePort Services do not route (pod->service traffic). Service objects, endpoints
#     and `kubectl port-forward svc/NAME` work. The `kubernetes` Service has no endpoints
#     (--endpoint-reconciler-type=none, as the advertise address is 127.0.0.1): pods cannot reach the API server.
#   - No cluster DNS (no CoreDNS image); pods get the host's resolv.conf but no route to use it.
#   - No default StorageClass / dynamic PV provisioning (emptyDir, hostPath, ConfigMap/Secret volumes work).
#   - No metrics-server (`kubectl top` fails), no Ingress controller, no LoadBalancer, no cloud provider
#     (binaries built with -tags "providerless dockerless"; the kubelet cannot use dockershim).
#   - Only images in 127.0.0.1:5000 (or imported with `ctr -a /run/realkube-containerd/containerd.sock -n k8s.io
#     images import`) can run.
#   - Negative oom_score_adj is impossible on this VM (root lacks CAP_SYS_RESOURCE): containerd runs with
#     restrict_oom_score_adj=true and the kubelet with --oom-score-adj=0 (else every pod sandbox fails in runc with
#     "can't get final child's PID from pipe: EOF").
#   - Debian's busybox-static `wget` segfaults inside containers (static glibc); use `nc` there. Not a cluster bug.
#   - /usr/bin/kubectl here is v1.32 (google-cloud-sdk); it mostly works but is outside the version skew.
#   - HTTP probes in your own manifests make the kubelet dial pod IPs on rkbr0 (local only). Probe from the host
#     through `kubectl port-forward` and 127.0.0.1, never straight to pod IPs.
#   - Don't edit this script while an `up` is running (bash reads it as it goes); stop/start are cheap.
# BUILD NOTES (what it took to build 1.20 sources with Debian's Go 1.19)
#   - Source: `apt-get source kubernetes` = 1.20.5+really1.20.2-1.1+deb12u1 (vendored deps). deb-src is added as
#     /etc/apt/sources.list.d/realkube-src.sources when missing. Built with Debian's Go 1.19.8 (golang-1.19-go, /usr/lib/go-1.19/bin/go) in GOPATH mode
#     (GO111MODULE=off, as k8s 1.20's own make; module mode wants a go.mod update that needs the proxy), go build -p 2,
#     version ldflags v1.20.2 / faecb196815e248d3ecfb03c680a4507229c2a56.
#   - The tarball lacks pkg/generated/openapi/zz_generated.openapi.go: generated with the vendored openapi-gen (same
#     inputs as Makefile.generated_files; the API-rule report equals api/api-rules/violation_exceptions.list).
#   - The vendored github.com/modern-go/reflect2 v1.0.1 crashes with Go >= 1.18 (json-iterator map encoding:
#     SIGSEGV in reflect.mapiternext); it is replaced by Debian's fixed 1.0.2 (golang-github-modern-go-reflect2-dev).
#     Debian's own bookworm kubectl (kubernetes-client) has this bug (`kubectl config set-credentials` crashes),
#     so kubectl is built here too.
#   - Patch: kubelet's validateNodeIP accepts loopback, so --node-ip=127.0.0.1 works and the API server reaches the
#     kubelet (exec/logs/port-forward) on 127.0.0.1:10250.
#   - Extra binary realkube-cri: a tiny CRI client (the kubelet's own cri/remote package) for `stop`; no crictl in Debian.
# HOST CHANGES (undone by `stop` where noted)
#   - apt packages (policy-rc.d blocks service autostart during the install); the deb-src file above.
#   - iptables: one rule `FORWARD -i rkbr0 -o rkbr0 -j ACCEPT` (Docker's FORWARD policy is DROP); removed on stop.
#     kubelet makeIPTablesUtilChains=false, so it adds no chains; no kube-proxy rules.
#   - The kubelet sets vm.overcommit_memory=1, kernel.panic=10, kernel.panic_on_oops=1 when it starts; the script
#     puts the previous values back as soon as the node is Ready, and again on stop.
#   - cgroups /sys/fs/cgroup/*/kubepods (removed on stop), netns /var/run/netns/cni-* (removed with the pods),
#     bridge rkbr0 (deleted on stop), mounts under $RK/kubelet (unmounted on stop).
# TIMINGS (2-core VM, other work running): build from scratch 219 s; start 24 s (first, incl. certs and pause
#   image) / ~10 s (restart); `up` from an empty $RK 258 s (+ apt); `demo` ~20 s; `stop` ~3 s.
# VERSIONS: Kubernetes v1.20.2 (Debian 1.20.5+really1.20.2-1.1+deb12u1), Go 1.19.8, etcd 3.4.23, containerd
#   1.6.20~ds1-1+deb12u3, runc 1.1.5+ds1-1+deb12u1, CNI plugins 1.1.1, docker-registry 2.8.2, skopeo 1.9.3,
#   umoci 0.4.7, busybox 1.35.0, reflect2 1.0.2 (Debian 1.0.2-2).
# ===============================================================
set -Eeuo pipefail
# Always Debian's Go 1.19 for the 1.20 sources, whatever Go the caller has on PATH (a project's newer Go first, say);
# installed as golang-1.19-go only, so no `go` is added to the machine's PATH.
export PATH="/usr/lib/go-1.19/bin:$PATH"
unset GOROOT GOBIN

RK=${REALKUBE_HOME:-$HOME/realkube}
BIN=$RK/bin
LOGS=$RK/logs
RUN=$RK/run
PKI=$RK/pki
ETC=$RK/etc
SRC=$RK/src
KSRC=$SRC/kubernetes
GOPATH_DIR=$RK/gopath
GOSRC=$GOPATH_DIR/src/k8s.io/kubernetes
CSTATE=/run/realkube-containerd
CSOCK=$CSTATE/containerd.sock
REG=127.0.0.1:5000
PAUSE_TAG=3.4
PAUSE_IMAGE=$REG/pause:$PAUSE_TAG
NODE=realkube
CTX=kind-realkube
API=https://127.0.0.1:6443
ETCD_PORT=12379
ETCD_PEER_PORT=12380
POD_SUBNET=10.244.0.0/24
CLUSTER_CIDR=10.244.0.0/16
SVC_CIDR=10.96.0.0/16
SVC_IP=10.96.0.1
BRIDGE=rkbr0
KUBE_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
KUBE_VERSION=v1.20.2
KUBE_COMMIT=faecb196815e248d3ecfb03c680a4507229c2a56
GO_TAGS="providerless dockerless"
JOBS=${REALKUBE_JOBS:-2}
BUILD_REV=2   # bump when the build inputs below change, to force a rebuild
APT_SRC_FILE=/etc/apt/sources.list.d/realkube-src.sources
PKGS=(golang-1.19-go golang-github-modern-go-reflect2-dev etcd-server containerd containernetworking-plugins runc
      docker-registry skopeo umoci busybox-static openssl iptables curl ca-certificates dpkg-dev gcc libc6-dev perl
      util-linux iproute2 mount)
SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
export PATH=/usr/lib/go-1.19/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log()  { printf '[realkube %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
warn() { printf '[realkube %s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf '[realkube %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }
kc()   { "$BIN/kubectl" --kubeconfig="$RK/kubeconfig" "$@"; }

lock() {
  mkdir -p "$RK"
  exec 9>"$RK/.lock"
  flock -n 9 || die "another realkube.sh (up/stop/build) is running"
}

wait_for() { # timeout-seconds description command...
  local t=$1 desc=$2; shift 2
  local end=$((SECONDS + t))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$end" ]; then warn "timed out after ${t}s waiting for $desc"; return 1; fi
    sleep 1
  done
}

# ---------------------------------------------------------------- processes (by saved PID only)
is_running() { # name
  local f="$RUN/$1.pid" pid exe want
  [ -s "$f" ] || return 1
  pid=$(cat "$f")
  [ -d "/proc/$pid" ] || return 1
  want=$(cat "$RUN/$1.exe" 2>/dev/null) || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [ "$exe" = "$want" ]
}

start_bg() { # name binary args...
  local name=$1; shift
  if is_running "$name"; then log "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  mkdir -p "$RUN" "$LOGS"
  log "starting $name"
  printf '=== %s start: %s\n' "$(date -Is)" "$*" >>"$LOGS/$name.log"
  readlink -f "$1" >"$RUN/$name.exe"
  setsid "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &   # 9>&-: daemons must not inherit the lock
  echo $! >"$RUN/$name.pid"
  sleep 0.5
  if ! is_running "$name"; then tail -n 30 "$LOGS/$name.log" >&2; die "$name exited right away (log: $LOGS/$name.log)"; fi
}

stop_bg() { # name [timeout-seconds]
  local name=$1 t=${2:-20} pid i
  if ! is_running "$name"; then rm -f "$RUN/$name.pid" "$RUN/$name.exe"; return 0; fi
  pid=$(cat "$RUN/$name.pid")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < t * 10; i++)); do is_running "$name" || break; sleep 0.1; done
  if is_running "$name"; then warn "$name did not exit after ${t}s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.5; fi
  rm -f "$RUN/$name.pid" "$RUN/$name.exe"
}

# ---------------------------------------------------------------- install (apt)
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

install_deps() {
  local missing=() p
  for p in "${PKGS[@]}"; do pkg_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  # keep package postinst scripts from starting system services (etcd, docker-registry) on a systemd host
  local prc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; prc=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" || { [ -n "$prc" ] && rm -f /usr/sbin/policy-rc.d; die "apt-get install failed"; }
  [ -n "$prc" ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

enable_deb_src() {
  if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then return 0; fi
  log "enabling deb-src in $APT_SRC_FILE"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed -e 's/^Types:.*/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$APT_SRC_FILE"
  elif grep -qs '^deb ' /etc/apt/sources.list; then
    APT_SRC_FILE=/etc/apt/sources.list.d/realkube-src.list
    grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' >"$APT_SRC_FILE"
  else
    cat >"$APT_SRC_FILE" <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  fi
  apt-get update -qq
  apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes' || die "deb-src for kubernetes not available"
}

# ---------------------------------------------------------------- build
fetch_source() {
  if [ -f "$KSRC/.realkube-unpacked" ]; then return 0; fi
  enable_deb_src
  mkdir -p "$SRC"
  log "apt-get source kubernetes"
  (cd "$SRC" && { apt-get source --download-only "kubernetes=$KUBE_DEB_VERSION" 2>/dev/null || apt-get source --download-only kubernetes; })
  local dsc
  dsc=$(ls -t "$SRC"/kubernetes_*.dsc | head -n1)
  rm -rf "$KSRC"
  (cd "$SRC" && dpkg-source -x "$dsc" kubernetes >/dev/null)
  touch "$KSRC/.realkube-unpacked"
}

go_env() {
  export GOPATH=$GOPATH_DIR GOCACHE=$RK/gocache GOPROXY=off GO111MODULE=off CGO_ENABLED=0 GOFLAGS='' GOTOOLCHAIN=local
  mkdir -p "$GOPATH_DIR/src/k8s.io"
  ln -sfn "$KSRC" "$GOSRC"
}

patch_source() {
  # Go >= 1.18 breaks the vendored github.com/modern-go/reflect2 v1.0.1 (json-iterator map encoding segfaults in
  # reflect.mapiternext); use Debian's fixed v1.0.2 (golang-github-modern-go-reflect2-dev) instead.
  local r2=$KSRC/vendor/github.com/modern-go/reflect2 d2=/usr/share/gocode/src/github.com/modern-go/reflect2
  if [ ! -f "$r2/go_above_118.go" ]; then
    [ -f "$d2/go_above_118.go" ] || die "$d2 (golang-github-modern-go-reflect2-dev >= 1.0.2) missing"
    log "replacing vendored modern-go/reflect2 v1.0.1 with Debian's $(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
    rm -f "$r2"/*.go "$r2"/*.s
    cp "$d2"/*.go "$d2"/*.s "$r2/"
  fi
  local f=$KSRC/pkg/kubelet/kubelet_node_status.go
  if grep -q "nodeIP can't be loopback address" "$f"; then
    log "patching kubelet to accept a loopback --node-ip"
    perl -0pi -e 's/\tif nodeIP\.IsLoopback\(\) \{\n\t\treturn fmt\.Errorf\("nodeIP can.t be loopback address"\)\n\t\}\n/\t\/\/ realkube: loopback node IPs are allowed (single-node, loopback-only cluster)\n/' "$f"
    ! grep -q "nodeIP can't be loopback address" "$f" || die "kubelet loopback patch did not apply"
  fi
  # tiny CRI client used by `stop` (Debian has no crictl)
  mkdir -p "$KSRC/cmd/realkube-cri"
  cat >"$KSRC/cmd/realkube-cri/main.go.new" <<'EOF'
// realkube-cri: minimal CRI client for realkube.sh (list / remove all pod sandboxes).
package main

import (
	"fmt"
	"os"
	"time"

	"k8s.io/kubernetes/pkg/kubelet/cri/remote"
)

func main() {
	if len(os.Args) != 3 || (os.Args[2] != "list" && os.Args[2] != "rmp-all") {
		fmt.Fprintln(os.Stderr, "usage: realkube-cri unix:///path/to/containerd.sock list|rmp-all")
		os.Exit(2)
	}
	rs, err := remote.NewRemoteRuntimeService(os.Args[1], 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pods, err := rs.ListPodSandbox(nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rc := 0
	for _, p := range pods {
		name := p.Id
		if p.Metadata != nil {
			name = p.Metadata.Namespace + "/" + p.Metadata.Name
		}
		switch os.Args[2] {
		case "list":
			fmt.Printf("pod %.13s %s %s\n", p.Id, name, p.State)
		case "rmp-all":
			if err := rs.StopPodSandbox(p.Id); err != nil {
				fmt.Fprintf(os.Stderr, "stop %s: %v\n", name, err)
				rc = 1
			}
			if err := rs.RemovePodSandbox(p.Id); err != nil {
				fmt.Fprintf(os.Stderr, "remove %s: %v\n", name, err)
				rc = 1
			} else {
				fmt.Printf("removed pod sandbox %s\n", name)
			}
		}
	}
	if os.Args[2] == "list" {
		ctrs, err := rs.ListContainers(nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range ctrs {
			n := c.Id
			if c.Metadata != nil {
				n = c.Metadata.Name
			}
			fmt.Printf("container %.13s %s pod=%.13s %s %s\n", c.Id, n, c.PodSandboxId, c.State, c.Image.GetImage())
		}
	}
	os.Exit(rc)
}
EOF
  if cmp -s "$KSRC/cmd/realkube-cri/main.go.new" "$KSRC/cmd/realkube-cri/main.go"; then
    rm -f "$KSRC/cmd/realkube-cri/main.go.new"
  else
    mv "$KSRC/cmd/realkube-cri/main.go.new" "$KSRC/cmd/realkube-cri/main.go"
  fi
}

gen_openapi() {
  local out=$KSRC/pkg/generated/openapi/zz_generated.openapi.go
  [ -s "$out" ] && return 0
  log "generating $out (vendored openapi-gen)"
  (
    cd "$GOSRC"
    go build -p "$JOBS" -o "$SRC/openapi-gen" k8s.io/kubernetes/vendor/k8s.io/kube-openapi/cmd/openapi-gen
    # same directory selection as Makefile.generated_files (KUBE_OPENAPI target)
    find -H . \( -not \( \( -path './_*' -o -path './.*' -o -path ./vendor -o -path ./debian \) -prune \) \) \
        -type f -name '*.go' | sed 's|^./staging/src|vendor|; s|/[^/]*$||; s|^./||' | LC_ALL=C sort -u >"$SRC/all_go_dirs.txt"
    while read -r d; do find "$d" -maxdepth 1 -type f -name '*.go'; done <"$SRC/all_go_dirs.txt" \
      | { xargs grep -l '^// *+k8s:' || true; } | grep -v -E '^vendor/k8s.io/(code-generator|sample-apiserver)/' \
      | { xargs grep -l '+k8s:openapi-gen=' || true; } | xargs -n1 dirname | LC_ALL=C sort -u >"$SRC/openapi_dirs.txt"
    "$SRC/openapi-gen" --logtostderr \
      -i "$(sed 's|^|k8s.io/kubernetes/|' "$SRC/openapi_dirs.txt" | paste -sd, -)" \
      -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
      -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt \
      -r "$SRC/openapi_violations.report" >"$LOGS/openapi-gen.log" 2>&1
  ) || die "openapi generation failed (see $LOGS/openapi-gen.log)"
  [ -s "$out" ] || die "openapi-gen did not write $out"
  diff -q "$SRC/openapi_violations.report" "$KSRC/api/api-rules/violation_exceptions.list" >/dev/null \
    || warn "openapi API-rule violations differ from the known list (harmless for running the cluster)"
}

build() {
  install_deps
  fetch_source
  mkdir -p "$BIN" "$LOGS"
  go_env
  patch_source
  # kubectl is built too: Debian's own kubernetes-client binary (bookworm) crashes in `kubectl config set-credentials`
  # and other map encodings (same reflect2 bug), and /usr/bin/kubectl may belong to another package.
  local targets=(kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl realkube-cri)
  local stamp t ok=1
  stamp="deb=$KUBE_DEB_VERSION tags=$GO_TAGS rev=$BUILD_REV $(go version)"
  for t in "${targets[@]}"; do [ -x "$BIN/$t" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$(cat "$BIN/.build-stamp" 2>/dev/null)" = "$stamp" ]; then
    log "binaries up to date in $BIN"; return 0
  fi
  gen_openapi
  local ld="-s -w" p date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version k8s.io/kubernetes/vendor/k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitCommit=$KUBE_COMMIT -X $p.gitTreeState=clean"
    ld+=" -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.buildDate=$date"
  done
  local pkgs=()
  for t in "${targets[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$t"); done
  log "go build -p $JOBS ${targets[*]} (log: $LOGS/build.log)"
  local t0=$SECONDS
  (cd "$GOSRC" && go build -p "$JOBS" -tags "$GO_TAGS" -ldflags "$ld" -o "$BIN/" "${pkgs[@]}") >>"$LOGS/build.log" 2>&1 \
    || { tail -n 30 "$LOGS/build.log" >&2; die "go build failed (see $LOGS/build.log)"; }
  echo "$stamp" >"$BIN/.build-stamp"
  log "TIMINGS: build took $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- certificates, kubeconfigs, configs
gen_cert() { # name CN O extendedKeyUsage subjectAltName [ca-name]
  local name=$1 cn=$2 org=$3 eku=$4 sans=$5 ca=${6:-ca} subj
  [ -s "$PKI/$name.crt" ] && [ -s "$PKI/$name.key" ] && return 0
  subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$sans" ] || echo "subjectAltName=$sans"
  } >"$PKI/$name.ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$PKI/$name.key" -subj "$subj" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
  chmod 600 "$PKI/$name.key"
}

gen_ca() { # name CN
  [ -s "$PKI/$1.crt" ] && [ -s "$PKI/$1.key" ] && return 0
  log "generating $PKI/$1.crt"
  openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$PKI/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$PKI/$1.crt" 2>/dev/null
  chmod 600 "$PKI/$1.key"
}

gen_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  gen_ca ca realkube-ca
  gen_ca front-proxy-ca realkube-front-proxy-ca
  gen_cert front-proxy-client front-proxy-client "" clientAuth "" front-proxy-ca
  gen_cert apiserver kube-apiserver "" serverAuth \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,DNS:$NODE,IP:127.0.0.1,IP:$SVC_IP"
  gen_cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters clientAuth ""
  gen_cert admin kubernetes-admin system:masters clientAuth ""
  gen_cert controller-manager system:kube-controller-manager "" clientAuth ""
  gen_cert scheduler system:kube-scheduler "" clientAuth ""
  gen_cert kubelet-client "system:node:$NODE" system:nodes clientAuth ""
  gen_cert kubelet-server "system:node:$NODE" "" serverAuth "DNS:$NODE,DNS:localhost,IP:127.0.0.1"
  if [ ! -s "$PKI/sa.key" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null
    openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
    chmod 600 "$PKI/sa.key"
  fi
}

mk_kubeconfig() { # file cluster user context cert-name
  local f=$1 cluster=$2 user=$3 ctx=$4 name=$5
  [ -s "$f" ] && return 0
  local k=("$BIN/kubectl" --kubeconfig="$f.tmp")
  rm -f "$f.tmp"
  "${k[@]}" config set-cluster "$cluster" --server="$API" --certificate-authority="$PKI/ca.crt" --embed-certs=true >/dev/null
  "${k[@]}" config set-credentials "$user" --client-certificate="$PKI/$name.crt" --client-key="$PKI/$name.key" --embed-certs=true >/dev/null
  "${k[@]}" config set-context "$ctx" --cluster="$cluster" --user="$user" >/dev/null
  "${k[@]}" config use-context "$ctx" >/dev/null
  chmod 600 "$f.tmp"; mv "$f.tmp" "$f"
}

write_configs() {
  mkdir -p "$ETC" "$ETC/cni/net.d" "$ETC/containerd/certs.d/$REG" "$RK/registry/data" "$RK/cni/ipam" \
           "$RK/containerd/root" "$RK/containerd/opt" "$RK/kubelet" "$RK/etcd" "$LOGS" "$RUN"
  chmod 700 "$RK/etcd"
  mk_kubeconfig "$RK/kubeconfig" "$CTX" "$CTX" "$CTX" admin
  mk_kubeconfig "$ETC/controller-manager.kubeconfig" realkube system:kube-controller-manager default controller-manager
  mk_kubeconfig "$ETC/scheduler.kubeconfig" realkube system:kube-scheduler default scheduler
  mk_kubeconfig "$ETC/kubelet.kubeconfig" realkube "system:node:$NODE" default kubelet-client

  cat >"$ETC/registry.yml" <<EOF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $RK/registry/data
  delete:
    enabled: true
http:
  addr: $REG
  headers:
    X-Content-Type-Options: [nosniff]
EOF

  cat >"$ETC/containerd.toml" <<EOF
# realkube: a containerd instance separate from Docker's
version = 2
root = "$RK/containerd/root"
state = "$CSTATE/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CSOCK"
[ttrpc]
  address = "$CSOCK.ttrpc"
[debug]
  address = "$CSTATE/debug.sock"
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$RK/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_tls_streaming = false
  enable_selinux = false
  # This machine withholds CAP_SYS_RESOURCE even from root, so negative oom_score_adj values (pause: -998,
  # Guaranteed pods: -997) cannot be set: clamp them to containerd's own score instead of failing the sandbox.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$CSTATE/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$ETC/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$ETC/containerd/certs.d"
EOF

  cat >"$ETC/containerd/certs.d/$REG/hosts.toml" <<EOF
server = "http://$REG"

[host."http://$REG"]
  capabilities = ["pull", "resolve", "push"]
EOF
  # docker.io/NAME:TAG (e.g. image: busybox) is served by the local registry as $REG/NAME:TAG; Docker Hub is never asked
  mkdir -p "$ETC/containerd/certs.d/docker.io"
  cat >"$ETC/containerd/certs.d/docker.io/hosts.toml" <<EOF
server = "http://$REG"

[host."http://$REG"]
  capabilities = ["pull", "resolve"]
EOF

  # No default route in pods: nothing a pod sends can leave this machine.
  cat >"$ETC/cni/net.d/10-realkube.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "realkube",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RK/cni/ipam",
        "ranges": [[{"subnet": "$POD_SUBNET"}]]
      }
    }
  ]
}
EOF

  cat >"$ETC/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-server.crt
tlsPrivateKeyFile: $PKI/kubelet-server.key
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
cgroupsPerQOS: true
enforceNodeAllocatable: ["pods"]
failSwapOn: false
makeIPTablesUtilChains: false
clusterDomain: cluster.local
podCIDR: $POD_SUBNET
maxPods: 110
serializeImagePulls: false
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%"
  nodefs.inodesFree: "2%"
  imagefs.available: "2%"
volumePluginDir: $RK/kubelet/volume-plugins
containerLogMaxSize: 10Mi
containerLogMaxFiles: 3
rotateCertificates: false
serverTLSBootstrap: false
EOF
}

# ---------------------------------------------------------------- images
reg_has() { # repo tag
  curl -sf -o /dev/null \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.index.v1+json' \
    -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REG/v2/$1/manifests/$2"
}

# push_rootfs_image ROOTFS-DIR REF USER ENTRYPOINT... : OCI image built with umoci, pushed with skopeo (no Docker needed)
push_rootfs_image() {
  local rootfs=$1 ref=$2 user=$3; shift 3
  local w
  w=$(mktemp -d "$RK/work.XXXXXX")
  umoci init --layout "$w/oci"
  umoci new --image "$w/oci:img"
  umoci unpack --image "$w/oci:img" "$w/bundle" >/dev/null
  cp -a "$rootfs/." "$w/bundle/rootfs/"
  umoci repack --image "$w/oci:img" "$w/bundle" >/dev/null
  local args=(--image "$w/oci:img" --author realkube)
  [ -n "$user" ] && args+=(--config.user "$user")
  local e; for e in "$@"; do args+=(--config.entrypoint "$e"); done
  umoci config "${args[@]}"
  skopeo copy --quiet --dest-tls-verify=false "oci:$w/oci:img" "docker://$ref"
  rm -rf "$w"
}

ensure_pause_image() {
  reg_has pause "$PAUSE_TAG" && return 0
  log "building pause image $PAUSE_IMAGE from $KSRC/build/pause/linux/pause.c"
  local w=$RK/pause-rootfs
  rm -rf "$w"; mkdir -p "$w"
  gcc -Os -Wall -Werror -static -DVERSION=v$PAUSE_TAG-realkube -o "$w/pause" "$KSRC/build/pause/linux/pause.c"
  strip "$w/pause"
  push_rootfs_image "$w" "$PAUSE_IMAGE" 65535:65535 /pause
  rm -rf "$w"
  reg_has pause "$PAUSE_TAG" || die "pause image push failed"
}

# ---------------------------------------------------------------- host bits
iptables_rule() { iptables "$1" FORWARD -i "$BRIDGE" -o "$BRIDGE" -m comment --comment realkube -j ACCEPT; }

save_sysctls() {
  [ -s "$RUN/sysctl.orig" ] && return 0
  local s; for s in "${SYSCTLS[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$RUN/sysctl.orig"
}
restore_sysctls() {
  [ -s "$RUN/sysctl.orig" ] || return 0
  local line; while read -r line; do sysctl -q -w "$line" >/dev/null || true; done <"$RUN/sysctl.orig"
}

node_ready() {
  [ "$(kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
# Ready=True with a heartbeat at/after epoch $1: after a restart the old Ready status in etcd does not count
node_ready_since() {
  local out st hb
  out=$(kc get node "$NODE" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}' 2>/dev/null) || return 1
  st=${out%% *}; hb=${out#* }
  [ "$st" = True ] && [ "$(date -d "$hb" +%s 2>/dev/null || echo 0)" -ge "$1" ]
}
api_ready() { kc get --raw /readyz >/dev/null 2>&1; }
kubelet_healthy() { curl -sf --max-time 5 http://127.0.0.1:10248/healthz >/dev/null 2>&1; }

# ---------------------------------------------------------------- start / stop / status
start() {
  local t0=$SECONDS
  for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl realkube-cri; do
    [ -x "$BIN/$b" ] || die "$BIN/$b missing: run '$0 build' (or 'up')"
  done
  gen_pki
  write_configs

  start_bg registry /usr/bin/docker-registry serve "$ETC/registry.yml"
  wait_for 30 "registry on $REG" curl -sf "http://$REG/v2/" || die "registry did not come up (log: $LOGS/registry.log)"
  ensure_pause_image

  mkdir -p "$CSTATE"
  start_bg containerd /usr/bin/containerd --config "$ETC/containerd.toml"
  wait_for 30 "containerd" ctr --address "$CSOCK" version || die "containerd did not come up (log: $LOGS/containerd.log)"

  start_bg etcd /usr/bin/etcd --name "$NODE" --data-dir "$RK/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "$NODE=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-token realkube \
    --initial-cluster-state new --quota-backend-bytes 2147483648
  wait_for 60 "etcd" curl -sf "http://127.0.0.1:$ETCD_PORT/health" || die "etcd did not come up (log: $LOGS/etcd.log)"

  start_bg kube-apiserver "$BIN/kube-apiserver" \
    --advertise-address=127.0.0.1 --bind-address=127.0.0.1 --secure-port=6443 --insecure-port=0 \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --client-ca-file="$PKI/ca.crt" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range="$SVC_CIDR" --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
    --requestheader-client-ca-file="$PKI/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
    --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group \
    --requestheader-username-headers=X-Remote-User \
    --proxy-client-cert-file="$PKI/front-proxy-client.crt" --proxy-client-key-file="$PKI/front-proxy-client.key" \
    --allow-privileged=true --endpoint-reconciler-type=none --profiling=false --v=1
  wait_for 120 "kube-apiserver /readyz" api_ready || die "kube-apiserver not ready (log: $LOGS/kube-apiserver.log)"

  start_bg kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$ETC/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$ETC/controller-manager.kubeconfig" --authorization-kubeconfig="$ETC/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10257 --port=0 --leader-elect=false --cluster-name=realkube \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --root-ca-file="$PKI/ca.crt" --service-account-private-key-file="$PKI/sa.key" --use-service-account-credentials=true \
    --allocate-node-cidrs=true --cluster-cidr="$CLUSTER_CIDR" --node-cidr-mask-size=24 --service-cluster-ip-range="$SVC_CIDR" \
    --configure-cloud-routes=false \
    --profiling=false --v=1
  start_bg kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$ETC/scheduler.kubeconfig" \
    --authentication-kubeconfig="$ETC/scheduler.kubeconfig" --authorization-kubeconfig="$ETC/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=10259 --port=0 --leader-elect=false --profiling=false --v=1

  iptables_rule -C 2>/dev/null || iptables_rule -I
  save_sysctls
  local since=0
  is_running kubelet || since=$(date +%s)
  start_bg kubelet "$BIN/kubelet" \
    --config="$ETC/kubelet-config.yaml" --kubeconfig="$ETC/kubelet.kubeconfig" \
    --container-runtime=remote --container-runtime-endpoint="unix://$CSOCK" --image-service-endpoint="unix://$CSOCK" \
    --containerd="$CSOCK" --runtime-request-timeout=15m \
    --hostname-override="$NODE" --node-ip=127.0.0.1 --root-dir="$RK/kubelet" \
    --pod-infra-container-image="$PAUSE_IMAGE" --oom-score-adj=0 --v=1
  wait_for 180 "node $NODE Ready" node_ready_since "$since" || die "node not Ready (log: $LOGS/kubelet.log)"
  wait_for 60 "kubelet healthz" kubelet_healthy || die "kubelet not healthy (log: $LOGS/kubelet.log)"
  restore_sysctls

  wait_for 60 "default ServiceAccount" kc -n default get serviceaccount default || true
  kc apply --server-side --field-manager=realkube -f - >/dev/null <<EOF || warn "could not create local-registry-hosting ConfigMap"
apiVersion: v1
kind: ConfigMap
metadata:
  name: local-registry-hosting
  namespace: kube-public
data:
  localRegistryHosting.v1: |
    host: "$REG"
    hostFromContainerRuntime: "$REG"
    help: "realkube: docker push $REG/NAME:TAG, then use image $REG/NAME:TAG"
EOF
  log "TIMINGS: start took $((SECONDS - t0))s"
  log "cluster is up: export KUBECONFIG=$RK/kubeconfig PATH=$BIN:\$PATH  (context $CTX, API $API, registry $REG)"
}

umount_under() { # dir: unmount everything mounted below it (deepest first)
  local d=$1 m
  awk -v d="$d" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || warn "could not unmount $m"
  done
}

stop() {
  stop_bg kubelet 20
  if is_running containerd; then
    log "removing pod sandboxes through CRI"
    timeout 120 "$BIN/realkube-cri" "unix://$CSOCK" rmp-all >>"$LOGS/stop.log" 2>&1 || warn "CRI cleanup reported errors (see $LOGS/stop.log)"
    # anything left (e.g. containers not known to CRI): kill via our containerd only
    local id
    for id in $(ctr --address "$CSOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CSOCK" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 1
    for id in $(ctr --address "$CSOCK" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$CSOCK" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_bg kube-scheduler 10
  stop_bg kube-controller-manager 10
  stop_bg kube-apiserver 30
  stop_bg etcd 20
  stop_bg containerd 30
  stop_bg registry 10
  umount_under "$RK/kubelet"
  while iptables_rule -C 2>/dev/null; do iptables_rule -D || break; done
  if ip link show "$BRIDGE" >/dev/null 2>&1; then ip link del "$BRIDGE" 2>/dev/null || warn "could not delete $BRIDGE"; fi
  restore_sysctls; rm -f "$RUN/sysctl.orig"
  local c; for c in /sys/fs/cgroup/*/kubepods; do
    [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  log "stopped"
}

status() {
  local rc=0 n
  for n in registry containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet; do
    if is_running "$n"; then printf '%-24s running (pid %s)\n' "$n" "$(cat "$RUN/$n.pid")"
    else printf '%-24s STOPPED\n' "$n"; rc=1; fi
  done
  if curl -sf "http://$REG/v2/" >/dev/null 2>&1; then echo "registry $REG: reachable"; else echo "registry $REG: NOT reachable"; rc=1; fi
  if [ -x "$BIN/kubectl" ] && [ -s "$RK/kubeconfig" ] && api_ready; then
    echo "apiserver $API: ready (context $CTX, KUBECONFIG=$RK/kubeconfig)"
    if node_ready; then echo "node $NODE: Ready"; else echo "node $NODE: NOT Ready"; rc=1; fi
    if kubelet_healthy; then echo "kubelet healthz: ok"; else echo "kubelet healthz: FAILING"; rc=1; fi
  else
    echo "apiserver $API: NOT ready"; rc=1
  fi
  if [ $rc = 0 ]; then echo "realkube: UP"; else echo "realkube: DOWN (or partly up)"; fi
  return $rc
}

# ---------------------------------------------------------------- demo / self test
demo() {
  local keep=${1:-}
  local ns=realkube-demo img=$REG/realkube-busybox:1.35 t0=$SECONDS
  status >/dev/null || die "cluster is not up: run '$0 up' first"
  if kc get namespace "$ns" >/dev/null 2>&1 && [ "$(kc get namespace "$ns" -o jsonpath='{.status.phase}')" = Terminating ]; then
    log "waiting for the previous $ns namespace to go away"
    kc wait --for=delete "namespace/$ns" --timeout=180s >/dev/null 2>&1 || true
  fi
  log "demo 1/7: building $img from Debian's busybox-static and pushing it to $REG"
  local w=$RK/demo-img
  rm -rf "$w"; mkdir -p "$w/rootfs/bin" "$w/rootfs/tmp"
  install -m 0755 /bin/busybox "$w/rootfs/bin/busybox"
  local a; for a in $(/bin/busybox --list); do [ "$a" = busybox ] || ln -sf busybox "$w/rootfs/bin/$a"; done
  if docker info >/dev/null 2>&1; then
    printf 'FROM scratch\nCOPY rootfs/ /\nCMD ["/bin/sh"]\n' >"$w/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q -t "$img" "$w" >/dev/null 2>"$LOGS/demo-docker.log" || { cat "$LOGS/demo-docker.log" >&2; die "docker build failed"; }
    docker push "$img" >>"$LOGS/demo-docker.log" 2>&1 || { cat "$LOGS/demo-docker.log" >&2; die "docker push failed"; }
    log "  pushed with docker"
  else
    push_rootfs_image "$w/rootfs" "$img" "" /bin/sh
    log "  pushed with umoci+skopeo (Docker not available)"
  fi
  reg_has realkube-busybox 1.35 || die "image not in registry"

  log "demo 2/7: server-side apply of Deployment $ns/rk-demo (2 replicas)"
  kc create namespace "$ns" --dry-run=client -o yaml | kc apply --server-side --field-manager=realkube-demo -f - >/dev/null
  kc apply --server-side --field-manager=realkube-demo -f - <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rk-demo
  namespace: $ns
  labels: {app: rk-demo}
spec:
  replicas: 2
  selector:
    matchLabels: {app: rk-demo}
  template:
    metadata:
      labels: {app: rk-demo}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: web
        image: $img
        imagePullPolicy: Always
        command: ["/bin/sh", "-c", "mkdir -p /www && echo \"hello from \$(hostname)\" > /www/index.html && echo rk-demo-started && exec httpd -f -v -p 8080 -h /www"]
        ports: [{containerPort: 8080}]
        readinessProbe:
          exec: {command: ["cat", "/www/index.html"]}
          periodSeconds: 2
EOF
  kc -n "$ns" get deploy rk-demo -o jsonpath='{range .metadata.managedFields[*]}{.manager}={.operation} {end}' | grep -q 'realkube-demo=Apply' \
    || die "server-side apply managedFields missing"
  kc -n "$ns" rollout status deploy/rk-demo --timeout=180s || { kc -n "$ns" describe pods >&2; die "deployment not ready"; }
  kc -n "$ns" get rs,pods -o wide

  local pods p1 p2
  pods=$(kc -n "$ns" get pods -l app=rk-demo -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
  [ "$(echo "$pods" | grep -c .)" = 2 ] || die "expected 2 pods, got: $pods"
  p1=$(echo "$pods" | head -n1); p2=$(echo "$pods" | tail -n1)

  log "demo 3/7: kubectl exec -i with stdin into $p1"
  local out
  out=$(echo hi | kc -n "$ns" exec -i "$p1" -- cat)
  [ "$out" = hi ] || die "exec stdin echo returned '$out'"
  log "  echo hi | kubectl exec -i $p1 -- cat  ->  $out"

  log "demo 4/7: kubectl port-forward to $p1:8080, curl through 127.0.0.1"
  local pflog=$RK/demo-port-forward.log pfpid port=""
  kc -n "$ns" port-forward --address 127.0.0.1 "pod/$p1" :8080 >"$pflog" 2>&1 &
  pfpid=$!
  for _ in $(seq 1 30); do
    port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) -> 8080$/\1/p' "$pflog" | head -n1)
    [ -n "$port" ] && break; sleep 0.5
  done
  [ -n "$port" ] || { kill "$pfpid" 2>/dev/null; cat "$pflog" >&2; die "port-forward did not start"; }
  out=$(curl -sf --max-time 10 "http://127.0.0.1:$port/") || { kill "$pfpid" 2>/dev/null; die "curl through port-forward failed"; }
  kill "$pfpid" 2>/dev/null; wait "$pfpid" 2>/dev/null || true
  [ "$out" = "hello from $p1" ] || die "unexpected body '$out'"
  log "  curl http://127.0.0.1:$port/  ->  $out"

  log "demo 5/7: kubectl logs $p1"
  out=$(kc -n "$ns" logs "$p1")
  echo "$out" | sed 's/^/    /'
  echo "$out" | grep -q rk-demo-started || die "logs lack the start line"

  log "demo 6/7: delete pod $p2, ReplicaSet must replace it"
  kc -n "$ns" delete pod "$p2" --wait=true >/dev/null
  local ok=0 newpods
  for _ in $(seq 1 90); do
    newpods=$(kc -n "$ns" get pods -l app=rk-demo -o jsonpath='{range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name}{"\n"}{end}')
    if [ "$(echo "$newpods" | grep -c .)" = 2 ] && ! echo "$newpods" | grep -qx "$p2"; then ok=1; break; fi
    sleep 1
  done
  [ $ok = 1 ] || die "ReplicaSet did not replace the pod"
  log "  ready pods now: $(echo $newpods)"

  log "demo 7/7: done in $((SECONDS - t0))s - all checks passed"
  if [ "$keep" != "--keep" ]; then
    kc delete namespace "$ns" --wait=false >/dev/null
    log "  (namespace $ns is being deleted; use 'demo --keep' to keep it)"
  fi
}

usage() {
  sed -n '/^# USE IT/,/^# WHAT RUNS/p' "$0" | sed '$d'
  echo "commands: up | build | start | stop | restart | status | demo [--keep] | env | kubectl ARGS..."
}

main() {
  local cmd=${1:-up}; shift || true
  [ "$(id -u)" = 0 ] || die "run as root"
  case "$cmd" in
    up)      lock; local t0=$SECONDS; build; start; log "TIMINGS: up took $((SECONDS - t0))s" ;;
    build)   lock; build ;;
    start)   lock; start ;;
    stop)    lock; stop ;;
    restart) lock; stop; start ;;
    status)  status ;;
    demo)    demo "${1:-}" ;;
    env)     echo "export KUBECONFIG=$RK/kubeconfig"; echo "export PATH=$BIN:\$PATH" ;;
    kubectl) exec "$BIN/kubectl" --kubeconfig="$RK/kubeconfig" "$@" ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
