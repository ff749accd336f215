/* `nstack doctor`: why a GPU would or would not be used here, as a list of
 * checks, each with a status (ok / warn / fail / info) and a fix hint.
 * Doctor reports; it does not fail: exit 0 whatever it finds, 1 only with
 * --strict and a failed check.
 *
 * Every path it probes (/proc, /dev, /usr, ...) is read under the prefix
 * NSTACK_DOCTOR_ROOT when set, so the tests build a fake machine in a
 * directory: a WSL tree without libcuda, a tree with a driver. With a
 * prefix the libraries are looked for only inside it (never the real
 * machine's), so the answers depend on the tree alone. */
#define _GNU_SOURCE /* dladdr, strcasestr */
#include <ctype.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ai.h"
#include "cli.h"
#include "client.h"
#include "engine/cpu_features.h"
#include "engine/cuda/cuda_backend.h"

typedef enum { ST_OK, ST_WARN, ST_FAIL, ST_INFO } status;
static const char *const status_names[] = {"ok", "warn", "fail", "info"};

#define MAX_CHECKS 16

typedef struct {
    const char *id;
    const char *title;
    status st;
    char detail[512];
    char hint[512];
} check;

typedef struct {
    const char *root; /* "" for the real machine */
    check checks[MAX_CHECKS];
    int n;
    /* what the checks learnt, for the summary */
    bool wsl, wsl_libcuda, driver_loaded, nvml_ok, nvml_mismatch, nodes_ok;
    int nvml_gpus;
    int pci_gpus; /* NVIDIA GPUs on the PCI bus, -1 unknown */
    char driver_version[64], nvml_version[64], nvml_lib_version[64];
    char nvml_error[256];
    int server_gpus; /* -1 unknown / unreachable */
} doctor;

static check *add(doctor *d, const char *id, const char *title, status st, const char *hint, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static check *add(doctor *d, const char *id, const char *title, status st, const char *hint, const char *fmt, ...) {
    if (d->n >= MAX_CHECKS) return &d->checks[MAX_CHECKS - 1];
    check *c = &d->checks[d->n++];
    c->id = id;
    c->title = title;
    c->st = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
    snprintf(c->hint, sizeof c->hint, "%s", hint ? hint : "");
    return c;
}

/* ---- paths under the root ---- */

static void rpath(const doctor *d, const char *p, char *out, size_t n) { snprintf(out, n, "%s%s", d->root, p); }

static bool exists(const doctor *d, const char *p) {
    char full[4096];
    rpath(d, p, full, sizeof full);
    struct stat st;
    return stat(full, &st) == 0;
}

/* The first line of a file under the root (trailing blanks removed);
 * false when it cannot be read. */
static bool read_first_line(const doctor *d, const char *p, char *buf, size_t n) {
    char full[4096];
    rpath(d, p, full, sizeof full);
    FILE *f = fopen(full, "r");
    if (!f) return false;
    bool ok = fgets(buf, (int)n, f) != NULL;
    fclose(f);
    if (!ok) return false;
    size_t l = strlen(buf);
    while (l > 0 && isspace((unsigned char)buf[l - 1])) buf[--l] = 0;
    return true;
}

static char *read_file(const doctor *d, const char *p) {
    char full[4096];
    rpath(d, p, full, sizeof full);
    return cli_read_all(full, NULL);
}

/* dlsym into a function pointer without ISO C's object-to-function cast. */
#define LOAD(lib, dst, name)              \
    do {                                  \
        void *p_ = dlsym(lib, name);      \
        memcpy(&(dst), &p_, sizeof(dst)); \
    } while (0)

static const char *const lib_dirs[] = {"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64",
                                       "/usr/lib", "/usr/lib/wsl/lib", "/usr/local/cuda/lib64",
                                       "/usr/local/cuda/targets/x86_64-linux/lib", NULL};

/* Opens the first of names that loads: by name through the loader's search
 * on the real machine, from the usual directories inside the root
 * otherwise. why gets dlerror's text of the first failure. */
static void *open_lib(const doctor *d, const char *const *names, char *why, size_t whylen) {
    why[0] = 0;
    for (const char *const *nm = names; *nm; nm++) {
        if (!*d->root) {
            void *h = dlopen(*nm, RTLD_NOW | RTLD_LOCAL);
            if (h) return h;
            const char *e = dlerror();
            if (!why[0]) snprintf(why, whylen, "%s", e ? e : "not found");
            continue;
        }
        for (const char *const *dir = lib_dirs; *dir; dir++) {
            char full[4096];
            snprintf(full, sizeof full, "%s%s/%s", d->root, *dir, *nm);
            struct stat st;
            if (stat(full, &st) != 0) continue;
            void *h = dlopen(full, RTLD_NOW | RTLD_LOCAL);
            if (h) return h;
            const char *e = dlerror();
            if (!why[0]) snprintf(why, whylen, "%s", e ? e : "cannot load");
        }
        if (!why[0]) snprintf(why, whylen, "%s: not found under %s", *nm, d->root);
    }
    return NULL;
}

/* A program in PATH (or, with a root, in the usual bin directories inside
 * it); also /usr/lib/wsl/lib, where WSL puts nvidia-smi. */
static bool find_program(const doctor *d, const char *name, char *where, size_t n) {
    const char *path = *d->root ? "/usr/bin:/bin:/usr/local/bin:/usr/sbin" : getenv("PATH");
    char buf[4096];
    snprintf(buf, sizeof buf, "%s:/usr/lib/wsl/lib", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        char full[4096];
        snprintf(full, sizeof full, "%s%s/%s", d->root, dir, name);
        if (access(full, X_OK) == 0) {
            snprintf(where, n, "%s/%s", dir, name);
            return true;
        }
    }
    return false;
}

/* NVIDIA display / 3D controllers on the PCI bus (vendor 0x10de, class
 * 0x03xxxx); -1 when /sys/bus/pci cannot be read (a container may hide
 * it). Tells "no NVIDIA GPU here" from "a GPU without its driver". */
static int nvidia_pci_devices(const doctor *d) {
    char dir[4096];
    rpath(d, "/sys/bus/pci/devices", dir, sizeof dir);
    DIR *h = opendir(dir);
    if (!h) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(h))) {
        if (e->d_name[0] == '.') continue;
        char p[4096 + 300], vendor[32] = "", cls[32] = "";
        snprintf(p, sizeof p, "%s/%s/vendor", dir, e->d_name);
        FILE *f = fopen(p, "r");
        if (f) {
            if (!fgets(vendor, sizeof vendor, f)) vendor[0] = 0;
            fclose(f);
        }
        snprintf(p, sizeof p, "%s/%s/class", dir, e->d_name);
        f = fopen(p, "r");
        if (f) {
            if (!fgets(cls, sizeof cls, f)) cls[0] = 0;
            fclose(f);
        }
        if (strncmp(vendor, "0x10de", 6) == 0 && strncmp(cls, "0x03", 4) == 0) n++;
    }
    closedir(h);
    return n;
}

/* ---- the checks ---- */

static void check_wsl(doctor *d) {
    char *ver = read_file(d, "/proc/version");
    bool ms = ver && (strcasestr(ver, "microsoft") || strcasestr(ver, "WSL"));
    free(ver);
    bool dxg = exists(d, "/dev/dxg");
    d->wsl = ms || dxg;
    if (!d->wsl) {
        add(d, "wsl", "WSL2", ST_INFO, NULL, "not WSL (no /dev/dxg, /proc/version does not mention Microsoft)");
        return;
    }
    d->wsl_libcuda = exists(d, "/usr/lib/wsl/lib/libcuda.so") || exists(d, "/usr/lib/wsl/lib/libcuda.so.1");
    if (!dxg) {
        add(d, "wsl", "WSL2", ST_WARN,
            "WSL 1 cannot use a GPU: convert the distribution with `wsl --set-version <distro> 2` in Windows",
            "WSL without /dev/dxg (WSL 1, or the GPU paravirtualization is off)");
    } else if (!d->wsl_libcuda) {
        add(d, "wsl", "WSL2", ST_FAIL,
            "install the NVIDIA driver for Windows (it brings the WSL libraries), then restart WSL after installing "
            "the Windows driver: `wsl --shutdown` in Windows, and open the distribution again; do not install a "
            "Linux NVIDIA driver inside WSL",
            "WSL2 with /dev/dxg, but /usr/lib/wsl/lib/libcuda.so is missing: the Windows driver's CUDA library is "
            "not mapped in");
    } else {
        add(d, "wsl", "WSL2", ST_OK, NULL, "WSL2 with /dev/dxg and /usr/lib/wsl/lib/libcuda.so");
    }
}

static void check_driver(doctor *d) {
    char line[512], smi[512];
    bool have_smi = find_program(d, "nvidia-smi", smi, sizeof smi);
    if (read_first_line(d, "/proc/driver/nvidia/version", line, sizeof line)) {
        d->driver_loaded = true;
        /* "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..." */
        const char *k = strstr(line, "Kernel Module");
        const char *p = k ? k + strlen("Kernel Module") : line;
        while (*p && !isdigit((unsigned char)*p)) p++;
        size_t l = strspn(p, "0123456789.");
        snprintf(d->driver_version, sizeof d->driver_version, "%.*s", (int)(l < 63 ? l : 63), p);
        add(d, "driver", "NVIDIA driver", ST_OK, have_smi ? NULL : "nvidia-smi is missing: install the driver's utilities package (e.g. nvidia-utils)",
            "kernel module %s loaded (/proc/driver/nvidia/version)%s%s", d->driver_version[0] ? d->driver_version : "(version unknown)",
            have_smi ? "; nvidia-smi at " : "; nvidia-smi not found", have_smi ? smi : "");
        if (!have_smi) d->checks[d->n - 1].st = ST_WARN;
        return;
    }
    if (d->wsl) {
        add(d, "driver", "NVIDIA driver", d->wsl_libcuda ? ST_INFO : ST_WARN,
            d->wsl_libcuda ? NULL : "install the NVIDIA driver for Windows, then restart WSL (`wsl --shutdown`)",
            "WSL: the driver is the Windows one (no /proc/driver/nvidia/version here, as expected)%s%s",
            have_smi ? "; nvidia-smi at " : "; nvidia-smi not found", have_smi ? smi : "");
        return;
    }
    int pci = nvidia_pci_devices(d);
    d->pci_gpus = pci;
    if (pci == 0) {
        add(d, "driver", "NVIDIA driver", ST_INFO, NULL,
            "no NVIDIA GPU on the PCI bus, and no NVIDIA kernel module loaded: nothing to install");
        return;
    }
    add(d, "driver", "NVIDIA driver", ST_FAIL,
        "install the NVIDIA driver for your distribution (e.g. `sudo apt install nvidia-driver` or the "
        "`nvidia-driver-NNN` package) and reboot; on a machine without an NVIDIA GPU nothing is needed",
        "no NVIDIA kernel module loaded (/proc/driver/nvidia/version absent)%s%s%s",
        pci > 0 ? " although the PCI bus has an NVIDIA GPU" : "", have_smi ? "; nvidia-smi at " : "; nvidia-smi not found", have_smi ? smi : "");
}

/* NVML's return codes that doctor explains. */
enum { NVML_OK = 0, NVML_NO_PERMISSION = 4, NVML_DRIVER_NOT_LOADED = 9, NVML_LIB_RM_VERSION_MISMATCH = 18 };

/* The version in a library's file name: libnvidia-ml.so.550.54.14 → 550.54.14. */
static void lib_file_version(void *fn, char *out, size_t n) {
    out[0] = 0;
    Dl_info info;
    if (!fn || !dladdr(fn, &info) || !info.dli_fname) return;
    char real[4096];
    const char *name = realpath(info.dli_fname, real) ? real : info.dli_fname;
    const char *so = strstr(name, ".so.");
    if (!so) return;
    so += 4;
    if (isdigit((unsigned char)*so) && strchr(so, '.')) snprintf(out, n, "%s", so);
}

static void check_nvml(doctor *d) {
    const char *env = getenv("NSTACK_NVML_LIB");
    char why[512];
    void *lib = NULL;
    if (env && *env) {
        lib = dlopen(env, RTLD_NOW | RTLD_LOCAL);
        if (!lib) snprintf(why, sizeof why, "%s", dlerror());
    } else {
        lib = open_lib(d, (const char *const[]){"libnvidia-ml.so.1", NULL}, why, sizeof why);
    }
    if (!lib) {
        snprintf(d->nvml_error, sizeof d->nvml_error, "libnvidia-ml.so.1 cannot be loaded");
        add(d, "nvml", "NVML", d->driver_loaded ? ST_FAIL : ST_INFO,
            d->driver_loaded ? "the driver is loaded but its NVML library is missing: install the driver's utilities "
                               "or compute package (libnvidia-ml / nvidia-utils) of the same version"
                             : (d->wsl ? "comes with the Windows driver in /usr/lib/wsl/lib" : NULL),
            "libnvidia-ml.so.1 cannot be loaded: %s", why);
        return;
    }
    int (*init)(void) = NULL, (*shutdown)(void) = NULL, (*count)(unsigned *) = NULL;
    int (*sysver)(char *, unsigned) = NULL;
    const char *(*errstr)(int) = NULL;
    LOAD(lib, init, "nvmlInit_v2");
    if (!init) LOAD(lib, init, "nvmlInit");
    LOAD(lib, shutdown, "nvmlShutdown");
    LOAD(lib, count, "nvmlDeviceGetCount_v2");
    if (!count) LOAD(lib, count, "nvmlDeviceGetCount");
    LOAD(lib, sysver, "nvmlSystemGetDriverVersion");
    LOAD(lib, errstr, "nvmlErrorString");
    if (!init) {
        add(d, "nvml", "NVML", ST_FAIL, "reinstall the NVIDIA driver", "the library has no nvmlInit");
        dlclose(lib);
        return;
    }
    lib_file_version((void *)init == NULL ? NULL : dlsym(lib, "nvmlInit_v2"), d->nvml_lib_version,
                     sizeof d->nvml_lib_version);
    int rc = init();
    if (rc != NVML_OK) {
        const char *msg = errstr ? errstr(rc) : NULL;
        snprintf(d->nvml_error, sizeof d->nvml_error, "nvmlInit failed: %s (code %d)", msg ? msg : "error", rc);
        const char *hint = "check `nvidia-smi`; reinstalling the driver and rebooting fixes most cases";
        if (rc == NVML_LIB_RM_VERSION_MISMATCH) {
            d->nvml_mismatch = true;
            hint = "the driver's user-space library and the loaded kernel module differ: the driver was updated "
                   "while the old module stayed loaded (the runtime started before the driver). Reboot, or unload "
                   "and reload the nvidia modules, then restart the server and any runtime";
        } else if (rc == NVML_DRIVER_NOT_LOADED) {
            hint = d->wsl ? "restart WSL after installing the Windows driver (`wsl --shutdown`)"
                          : "load the driver (`sudo modprobe nvidia`) or reboot after installing it";
        } else if (rc == NVML_NO_PERMISSION) {
            hint = "this user may not open the GPU device files: see the device node check";
        }
        add(d, "nvml", "NVML", ST_FAIL, hint, "%s", d->nvml_error);
        dlclose(lib);
        return;
    }
    char ver[80] = "";
    if (sysver && sysver(ver, sizeof ver) == NVML_OK) snprintf(d->nvml_version, sizeof d->nvml_version, "%s", ver);
    unsigned n = 0;
    if (count && count(&n) == NVML_OK) d->nvml_gpus = (int)n;
    if (shutdown) shutdown();
    dlclose(lib);
    d->nvml_ok = true;
    /* a library from another driver release than the kernel module: the
     * module was not reloaded after an update */
    const char *lv = d->nvml_version[0] ? d->nvml_version : d->nvml_lib_version;
    if (d->driver_version[0] && lv[0] && strcmp(d->driver_version, lv) != 0) {
        d->nvml_mismatch = true;
        add(d, "nvml", "NVML", ST_WARN,
            "reboot (or reload the nvidia modules) so that the kernel module matches the installed driver, then "
            "restart the server: a runtime started before the driver update keeps the old one",
            "NVML %s, but the kernel module is %s", lv, d->driver_version);
        return;
    }
    add(d, "nvml", "NVML", n > 0 ? ST_OK : ST_WARN,
        n > 0 ? NULL : "NVML sees no GPU: check `nvidia-smi`, the GPU's power and PCIe seating, or the VM's passthrough",
        "loaded, driver %s, %u GPU%s", d->nvml_version[0] ? d->nvml_version : "(version unknown)", n,
        n == 1 ? "" : "s");
}

static void check_cuda(doctor *d) {
    char why[512], version[384] = "";
    char *js = read_file(d, "/usr/local/cuda/version.json");
    if (js) {
        cJSON *j = cJSON_Parse(js);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "cuda"), "version");
        if (cJSON_IsString(v)) snprintf(version, sizeof version, "toolkit %s (/usr/local/cuda/version.json)", v->valuestring);
        cJSON_Delete(j);
        free(js);
    }
    char line[256];
    if (!version[0] && read_first_line(d, "/usr/local/cuda/version.txt", line, sizeof line))
        snprintf(version, sizeof version, "%s (/usr/local/cuda/version.txt)", line);

    void *lib = open_lib(d, (const char *const[]){"libcudart.so", "libcudart.so.12", "libcudart.so.11.0", NULL}, why,
                         sizeof why);
    if (!lib) {
        add(d, "cuda", "CUDA runtime", ST_INFO,
            "only needed by runtimes that use CUDA (vLLM, PyTorch); they usually bring their own libcudart; a "
            "system-wide one comes with the CUDA toolkit (/usr/local/cuda)",
            "libcudart not found by the loader%s%s", version[0] ? "; " : "", version);
        return;
    }
    int (*rtver)(int *) = NULL;
    LOAD(lib, rtver, "cudaRuntimeGetVersion");
    int v = 0;
    if (rtver && rtver(&v) == 0 && v > 0)
        add(d, "cuda", "CUDA runtime", ST_OK, NULL, "libcudart %d.%d loadable%s%s", v / 1000, (v % 1000) / 10,
            version[0] ? "; " : "", version);
    else
        add(d, "cuda", "CUDA runtime", ST_OK, NULL, "libcudart loadable%s%s", version[0] ? "; " : "", version);
    dlclose(lib);
}

static void check_nodes(doctor *d) {
    if (d->wsl) {
        add(d, "devices", "GPU device nodes", ST_INFO, NULL,
            "WSL: GPUs come through /dev/dxg, not /dev/nvidia*");
        return;
    }
    const char *nodes[8];
    char names[8][64];
    int n = 0;
    nodes[n++] = "/dev/nvidiactl";
    char dev[4096];
    rpath(d, "/dev", dev, sizeof dev);
    DIR *dir = opendir(dev);
    struct dirent *e;
    while (dir && (e = readdir(dir)) && n < 8) {
        if (strncmp(e->d_name, "nvidia", 6) == 0 && isdigit((unsigned char)e->d_name[6])) {
            snprintf(names[n], sizeof names[n], "/dev/%.50s", e->d_name);
            nodes[n] = names[n];
            n++;
        }
    }
    if (dir) closedir(dir);
    if (n == 1 && !exists(d, "/dev/nvidiactl")) {
        add(d, "devices", "GPU device nodes", d->driver_loaded ? ST_FAIL : ST_INFO,
            d->driver_loaded ? "the driver is loaded but created no device files: run `nvidia-smi` once as root "
                               "(or install nvidia-modprobe); in a container, pass the GPU in (--gpus all)"
                             : NULL,
            "no /dev/nvidiactl or /dev/nvidia0");
        return;
    }
    char missing[512] = "", denied[512] = "";
    const char *deny_group = NULL;
    static char grpname[64];
    for (int i = 0; i < n; i++) {
        char full[4096];
        rpath(d, nodes[i], full, sizeof full);
        struct stat st;
        if (stat(full, &st) != 0) {
            snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", nodes[i]);
            continue;
        }
        if (access(full, R_OK | W_OK) != 0) {
            snprintf(denied + strlen(denied), sizeof denied - strlen(denied), " %s", nodes[i]);
            struct group *g = getgrgid(st.st_gid);
            if (g && !deny_group) {
                snprintf(grpname, sizeof grpname, "%s", g->gr_name);
                deny_group = grpname;
            }
        }
    }
    if (denied[0]) {
        char hint[512];
        snprintf(hint, sizeof hint,
                 "this user may not read and write them: add it to their group (`sudo usermod -aG %s $USER`, then "
                 "log in again) or fix the permissions (udev rules, the driver's NVreg_DeviceFileMode)",
                 deny_group ? deny_group : "video");
        add(d, "devices", "GPU device nodes", ST_FAIL, hint, "no read/write access to%s", denied);
    } else if (missing[0]) {
        add(d, "devices", "GPU device nodes", ST_WARN, "run `nvidia-smi` once as root, or install nvidia-modprobe",
            "missing:%s", missing);
    } else {
        add(d, "devices", "GPU device nodes", ST_OK, NULL, "%d present, readable and writable by this user", n);
    }
    d->nodes_ok = !denied[0] && !missing[0];
}

static void check_cpu(doctor *d) {
    const ns_cpu_features *f = ns_cpu_features_get();
    char feats[256] = "";
    if (f->avx2) strcat(feats, " AVX2");
    if (f->fma) strcat(feats, " FMA");
    if (f->f16c) strcat(feats, " F16C");
    if (f->avx_vnni) strcat(feats, " AVX-VNNI");
    if (f->avx512f) strcat(feats, " AVX-512F");
    if (f->avx512bw) strcat(feats, " AVX-512BW");
    if (f->avx512vnni) strcat(feats, " AVX-512-VNNI");
    if (!f->x86) {
        add(d, "cpu", "CPU features", ST_INFO, NULL, "not x86-64: the engine uses its portable kernels (%s)",
            ns_isa_active_name());
        return;
    }
    ns_isa det = ns_isa_detected();
    if (det == NS_ISA_SCALAR)
        add(d, "cpu", "CPU features", ST_WARN,
            f->avx2 && !f->os_ymm ? "the CPU has AVX2 but the OS does not save its registers (XSAVE off): check the "
                                    "hypervisor's CPU model"
                                  : "no AVX2: generation on the CPU will be several times slower",
            "features:%s; kernels: %s", feats[0] ? feats : " none", ns_isa_active_name());
    else
        add(d, "cpu", "CPU features", ST_OK, NULL, "features:%s; kernels: %s (best supported: %s)", feats,
            ns_isa_active_name(), ns_isa_name(det));
}

static void check_server(doctor *d, const char *host) {
    d->server_gpus = -1;
    char err[1024];
    const char *spec = client_host_spec(host);
    client *c = client_open(spec, err, sizeof err);
    if (!c) {
        add(d, "server", "nstack server", ST_WARN, "check --host or NSTACK_HOST", "%s", err);
        return;
    }
    cJSON *ver = NULL, *res = NULL;
    if (client_call(c, "GET", "/api/version", NULL, &ver, err, sizeof err) != 0) {
        add(d, "server", "nstack server", ST_INFO, "start it with `nstack serve` (or pass --host)", "not reachable: %s",
            err);
        client_close(c);
        return;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ver, "version");
    char version[64];
    snprintf(version, sizeof version, "%s", cJSON_IsString(v) ? v->valuestring : "?");
    int models = -1;
    if (client_call(c, "GET", "/api/resources", NULL, &res, err, sizeof err) == 0) {
        d->server_gpus = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "gpus"));
        models = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(res, "models"));
    }
    /* NVML works here but the running server sees no GPU: it started
     * before the driver (or without access to it) */
    if (d->server_gpus == 0 && d->nvml_ok && d->nvml_gpus > 0 && !*d->root) {
        add(d, "server", "nstack server", ST_WARN,
            "the server was probably started before the driver was loaded (or without access to the GPU): "
            "restart it",
            "version %s at %s sees no GPU, while NVML here sees %d", version, client_url(c), d->nvml_gpus);
    } else if (d->server_gpus >= 0) {
        add(d, "server", "nstack server", ST_OK, NULL, "version %s at %s: %d GPU%s, %d model%s loaded", version,
            client_url(c), d->server_gpus, d->server_gpus == 1 ? "" : "s", models, models == 1 ? "" : "s");
    } else {
        add(d, "server", "nstack server", ST_OK, NULL, "version %s at %s", version, client_url(c));
    }
    cJSON_Delete(ver);
    cJSON_Delete(res);
    client_close(c);
}

/* One sentence: whether a GPU would be used, and if not, the first reason. */
static void gpu_summary(const doctor *d, status *st, char *buf, size_t n) {
    if (d->nvml_ok && d->nvml_gpus > 0 && !d->nvml_mismatch) {
        *st = ST_OK;
        snprintf(buf, n, "%d NVIDIA GPU%s usable through driver %s", d->nvml_gpus, d->nvml_gpus == 1 ? "" : "s",
                 d->nvml_version[0] ? d->nvml_version : d->driver_version);
        return;
    }
    if (d->wsl && d->wsl_libcuda && !d->nvml_ok && !d->nvml_error[0]) {
        *st = ST_WARN;
        snprintf(buf, n, "WSL2 with the Windows driver's libcuda, but NVML did not answer");
        return;
    }
    *st = d->driver_loaded || d->wsl || d->pci_gpus > 0 ? ST_FAIL : ST_INFO;
    const char *why;
    if (d->nvml_mismatch) why = "the driver library and the kernel module differ (reboot after the driver update)";
    else if (d->wsl && !d->wsl_libcuda) why = "WSL2 without the Windows driver's libcuda (restart WSL after installing the Windows driver)";
    else if (!d->driver_loaded && !d->wsl && d->pci_gpus == 0)
        why = "this machine has no NVIDIA GPU (none on the PCI bus, no driver loaded)";
    else if (!d->driver_loaded && !d->wsl) why = "no NVIDIA driver is loaded (no /proc/driver/nvidia/version)";
    else if (!d->nvml_ok) why = d->nvml_error[0] ? d->nvml_error : "NVML cannot be used";
    else if (d->nvml_gpus == 0) why = "the driver sees no GPU";
    else why = "see the checks above";
    snprintf(buf, n, "no GPU will be used: %s; models run on the CPU", why);
}

static void doctor_usage(FILE *f) {
    fprintf(f,
            "usage: nstack doctor [--host URL] [--json] [--strict]\n"
            "Checks the NVIDIA driver, NVML, the CUDA runtime, WSL2, the GPU device files,\n"
            "the CPU's features and the local server, each with a fix hint. Exits 0 (it\n"
            "reports); with --strict, 1 when a check fails.\n"
            "  --host URL        the server (default: NSTACK_HOST or " CLIENT_DEFAULT_HOST ")\n"
            "  --json            one JSON object\n"
            "  --strict          exit 1 when a check fails\n"
            "NSTACK_DOCTOR_ROOT=DIR reads /proc, /dev and /usr under DIR (for tests).\n");
}

int cmd_doctor(int argc, char **argv) {
    const char *host = NULL;
    bool json = false, strict = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--host=", 7) == 0) {
            host = a + 7;
        } else if (strcmp(a, "--host") == 0) {
            if (!(host = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--strict") == 0) {
            strict = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            doctor_usage(stdout);
            return NS_EXIT_OK;
        } else {
            fprintf(stderr, "nstack %s: %s '%s'\n", argv[0], a[0] == '-' ? "unknown option" : "unexpected argument", a);
            doctor_usage(stderr);
            return NS_EXIT_USAGE;
        }
    }
    static doctor d;
    memset(&d, 0, sizeof d);
    d.pci_gpus = -1;
    const char *root = getenv("NSTACK_DOCTOR_ROOT");
    d.root = root ? root : "";
    /* a trailing '/' would double the one every path starts with */
    static char rootbuf[4096];
    snprintf(rootbuf, sizeof rootbuf, "%s", d.root);
    size_t rl = strlen(rootbuf);
    while (rl > 0 && rootbuf[rl - 1] == '/') rootbuf[--rl] = 0;
    d.root = rootbuf;

    /* order matters: later checks use what earlier ones learnt */
    check_wsl(&d);
    check_driver(&d);
    check_nvml(&d);
    check_cuda(&d);
    check_nodes(&d);
    check_cpu(&d);
    check_server(&d, host);

    status gst;
    char gpu[512];
    gpu_summary(&d, &gst, gpu, sizeof gpu);
    bool any_fail = false;
    int counts[4] = {0};
    for (int i = 0; i < d.n; i++) {
        counts[d.checks[i].st]++;
        if (d.checks[i].st == ST_FAIL) any_fail = true;
    }
    /* this binary's own CUDA backend (src/engine/cuda): always the real
     * machine's answer, NSTACK_DOCTOR_ROOT or not */
    char cuda_why[256] = "";
    const int cuda_devices = ns_cuda_device_count(cuda_why, sizeof cuda_why);
    const char *engine = "nstack's own engine computes on the CPU in this build; the GPU checks say whether a "
                         "GPU runtime (Ollama, llama.cpp, vLLM, the CUDA backend to come) could use a GPU here";

    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON *list = cJSON_AddArrayToObject(o, "checks");
        for (int i = 0; i < d.n; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "id", d.checks[i].id);
            cJSON_AddStringToObject(c, "title", d.checks[i].title);
            cJSON_AddStringToObject(c, "status", status_names[d.checks[i].st]);
            cJSON_AddStringToObject(c, "detail", d.checks[i].detail);
            if (d.checks[i].hint[0]) cJSON_AddStringToObject(c, "hint", d.checks[i].hint);
            else cJSON_AddNullToObject(c, "hint");
            cJSON_AddItemToArray(list, c);
        }
        cJSON *g = cJSON_AddObjectToObject(o, "gpu");
        cJSON_AddBoolToObject(g, "usable", gst == ST_OK);
        cJSON_AddStringToObject(g, "status", status_names[gst]);
        cJSON_AddStringToObject(g, "summary", gpu);
        cJSON_AddStringToObject(o, "engine", engine);
        cJSON *cb = cJSON_AddObjectToObject(o, "cuda_backend");
        cJSON_AddBoolToObject(cb, "built", ns_cuda_built());
        cJSON_AddStringToObject(cb, "build", ns_cuda_build_info());
        cJSON_AddNumberToObject(cb, "devices", cuda_devices);
        if (cuda_why[0]) cJSON_AddStringToObject(cb, "reason", cuda_why);
        else cJSON_AddNullToObject(cb, "reason");
        cJSON *sum = cJSON_AddObjectToObject(o, "counts");
        for (int s = 0; s < 4; s++) cJSON_AddNumberToObject(sum, status_names[s], counts[s]);
        if (*d.root) cJSON_AddStringToObject(o, "root", d.root);
        char *s = cJSON_Print(o);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(o);
    } else {
        if (*d.root) printf("(paths under NSTACK_DOCTOR_ROOT=%s)\n", d.root);
        for (int i = 0; i < d.n; i++) {
            const check *c = &d.checks[i];
            printf("[%-4s] %-17s %s\n", status_names[c->st], c->title, c->detail);
            if (c->hint[0]) printf("       %-17s fix: %s\n", "", c->hint);
        }
        printf("\nGPU: %s\n", gpu);
        printf("CUDA backend: %s; %d device%s%s%s%s\n", ns_cuda_build_info(), cuda_devices, cuda_devices == 1 ? "" : "s",
               cuda_why[0] ? " (" : "", cuda_why, cuda_why[0] ? ")" : "");
        printf("Note: %s.\n", engine);
        printf("%d ok, %d warn, %d fail, %d info\n", counts[ST_OK], counts[ST_WARN], counts[ST_FAIL], counts[ST_INFO]);
    }
    return strict && any_fail ? NS_EXIT_FAIL : NS_EXIT_OK;
}
