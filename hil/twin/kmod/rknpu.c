// SPDX-License-Identifier: GPL-2.0
/*
 * The RK3576 SoC surface of the virtual bench, as a kernel module for the
 * QEMU "virt" guest: what Rockchip's vendor kernel shows of the NPU, the GPU
 * and DDR devfreq devices, the CPU clusters and the thermal sensors.
 *
 * Everything here is driven by the real kernel frameworks (devfreq with its
 * governors and OPP tables, thermal zones, debugfs, procfs), so files read and
 * write as on a board, including their error codes. Nothing polls: loads,
 * temperatures and power states are computed from timestamps when read.
 *
 * Parameters (set by /usr/libexec/twin/rockchip-surface from the image):
 *   driver_version  RKNPU driver version string, e.g. "0.9.8"
 *   npu_freq_cap    highest NPU OPP in Hz (0: the full RK3576 table)
 *   twin_load       "CORE0_PCT CORE1_PCT": how busy each core is now (written by
 *                   /usr/libexec/twin/npu on behalf of the inference stand-ins)
 *   load_window_ms  the load file's accounting period: the vendor driver's 1 s
 *                   (RKNPU_LOAD_INTERVAL), scaled by the bench's time scale
 *   twin_busy_ms    (read only) the time any core has been busy since the module
 *                   loaded: the heat the npu-heating fault counts (twin/fault)
 * The run-time fault /run/twin/fault/thermal-throttle heats the SoC past its
 * 85 C trip and caps the NPU clock at 600 MHz while the file exists.
 */

#include <linux/cpu.h>
#include <linux/debugfs.h>
#include <linux/devfreq.h>
#include <linux/device.h>
#include <linux/kernfs.h>
#include <linux/kobject.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/namei.h>
#include <linux/platform_device.h>
#include <linux/pm_opp.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/thermal.h>
#include <linux/uaccess.h>

/* drivers/devfreq/governor.h of 6.1 is private to the kernel tree; its ABI: */
#define DEVFREQ_NAME_LEN 16
#define DEVFREQ_GOV_START 0x1
#define DEVFREQ_MIN_FREQ 0
#define DEVFREQ_MAX_FREQ ULONG_MAX
struct devfreq_governor {
	struct list_head node;
	const char name[DEVFREQ_NAME_LEN];
	const u64 attrs;
	const u64 flags;
	int (*get_target_freq)(struct devfreq *this, unsigned long *freq);
	int (*event_handler)(struct devfreq *devfreq, unsigned int event, void *data);
};
int devfreq_add_governor(struct devfreq_governor *governor);
int devfreq_remove_governor(struct devfreq_governor *governor);

#define LOG_TAG "RKNPU"
#define THROTTLE_FAULT "/run/twin/fault/thermal-throttle"
#define THROTTLE_NPU_HZ 600000000UL
#define NPU_INIT_HZ 950000000UL /* rockchip,init-freq = <950000> */
#define POWER_PUT_DELAY_MS 3000

static char *driver_version = "0.9.8";
module_param(driver_version, charp, 0444);
MODULE_PARM_DESC(driver_version, "driver version");
static unsigned long npu_freq_cap;
module_param(npu_freq_cap, ulong, 0444);
MODULE_PARM_DESC(npu_freq_cap, "highest NPU OPP in Hz (0: no cap)");

/* ---------------------------------------------------------------- model */

struct opp_entry {
	unsigned long hz;
	unsigned long uv;
};

/* vendor rk3576.dtsi npu-opp-table (standard RK3576 bin) */
static const struct opp_entry npu_opps[] = {
	{ 300000000, 725000 }, { 400000000, 725000 }, { 500000000, 725000 },
	{ 600000000, 725000 }, { 700000000, 725000 }, { 800000000, 800000 },
	{ 900000000, 850000 }, { 950000000, 875000 },
};
static const struct opp_entry gpu_opps[] = {
	{ 300000000, 712500 }, { 400000000, 712500 }, { 500000000, 712500 },
	{ 600000000, 712500 }, { 700000000, 712500 }, { 800000000, 800000 },
	{ 900000000, 850000 },
};
/* LPDDR4X board: the DDR firmware drops the LPDDR5-only 2736 MHz point */
static const struct opp_entry dmc_opps[] = {
	{ 528000000, 750000 }, { 1068000000, 750000 },
	{ 1560000000, 750000 }, { 2112000000, 800000 },
};

struct zone_model {
	const char *type;
	int idle_mc;  /* at rest, NPU idle */
	int gain_mc;  /* added at 100 % NPU load */
	int fault_mc; /* with the thermal-throttle fault */
	int ntrips;
	struct thermal_trip trips[3];
	struct thermal_zone_device *tz;
	/* state: temperature t0_mc at t0, heading for target_mc */
	int t0_mc;
	int target_mc;
	int half_ms;
};

#define CRIT { 115000, 2000, THERMAL_TRIP_CRITICAL }
static struct zone_model zones[] = {
	{ "soc-thermal", 42500, 18000, 93000, 1, { CRIT } },
	{ "bigcore-thermal", 41600, 10000, 92000, 1, { CRIT } },
	{ "little-core-thermal", 41600, 12000, 95000, 3,
	  { { 75000, 2000, THERMAL_TRIP_PASSIVE }, { 85000, 2000, THERMAL_TRIP_PASSIVE }, CRIT } },
	{ "ddr-thermal", 40700, 8000, 88000, 1, { CRIT } },
	{ "npu-thermal", 42500, 28000, 96000, 1, { CRIT } },
	{ "gpu-thermal", 40700, 9000, 90000, 1, { CRIT } },
};

#define HEAT_HALF_MS 4000
#define COOL_HALF_MS 5000
#define FAULT_HALF_MS 800

static DEFINE_SPINLOCK(model_lock);
static u64 model_t0_ns;
static int npu_load[2];
static bool model_fault;

/*
 * The load file as the vendor driver keeps it (rknpu_debugger.c, rknpu_drv.c): a timer
 * closes a window every RKNPU_LOAD_INTERVAL, recording each core's busy time in it, and
 * `load` shows the last closed window, busy time / window in percent (truncated). A job
 * shorter than a window shows as part of one, and stays visible for a whole window
 * after it ends. Here the windows are closed lazily, when the load changes or is read.
 */
static u64 load_window_ns = NSEC_PER_SEC;
static u64 load_window_start_ns; /* the open window; 0: not started */
static u64 load_counted_ns;      /* load_busy holds the open window up to here */
static u64 load_busy[2];         /* percent x ns of the open window */
static int load_record[2];       /* the last closed window, as `load` shows it */
static u64 busy_total_ns;        /* any core busy, since the module loaded */

/* Close the windows that ended by `now` and count the open one up to it. */
static void load_account_locked(u64 now)
{
	u64 end, whole;
	int i;

	if (!load_window_start_ns) {
		load_window_start_ns = load_counted_ns = now;
		return;
	}
	if (npu_load[0] || npu_load[1])
		busy_total_ns += now - load_counted_ns;
	if (now >= load_window_start_ns + load_window_ns) {
		end = load_window_start_ns + load_window_ns;
		for (i = 0; i < 2; i++) {
			load_busy[i] += (u64)npu_load[i] * (end - load_counted_ns);
			load_record[i] = div64_u64(load_busy[i], load_window_ns);
			load_busy[i] = 0;
		}
		/* windows closed since at one load: each records that load */
		whole = div64_u64(now - end, load_window_ns);
		if (whole)
			for (i = 0; i < 2; i++)
				load_record[i] = npu_load[i];
		load_window_start_ns = load_counted_ns = end + whole * load_window_ns;
	}
	for (i = 0; i < 2; i++)
		load_busy[i] += (u64)npu_load[i] * (now - load_counted_ns);
	load_counted_ns = now;
}

/* 2^(-dt/half) in 1/65536, piecewise linear between powers of two */
static u32 decay(u64 dt_ms, u32 half_ms)
{
	u64 n = div_u64(dt_ms, half_ms);
	u32 rem = dt_ms - n * half_ms;
	u32 f;

	if (n >= 16)
		return 0;
	f = 65536U >> n;
	return f - (u32)div_u64((u64)(f / 2) * rem, half_ms);
}

static int zone_temp_locked(struct zone_model *z, u64 now)
{
	u64 dt_ms = div_u64(now - model_t0_ns, NSEC_PER_MSEC);
	s64 delta = (s64)(z->t0_mc - z->target_mc) * decay(dt_ms, z->half_ms);

	return z->target_mc + (int)div_s64(delta, 65536);
}

/* Start a new segment of the temperature curves from where they are now. */
static void model_retarget_locked(u64 now)
{
	int i, avg = (npu_load[0] + npu_load[1]) / 2;

	for (i = 0; i < ARRAY_SIZE(zones); i++) {
		struct zone_model *z = &zones[i];
		int cur = model_t0_ns ? zone_temp_locked(z, now) : z->idle_mc;

		z->t0_mc = cur;
		z->target_mc = model_fault ? z->fault_mc : z->idle_mc + z->gain_mc * avg / 100;
		if (model_fault)
			z->half_ms = FAULT_HALF_MS;
		else
			z->half_ms = z->target_mc > cur ? HEAT_HALF_MS : COOL_HALF_MS;
	}
	model_t0_ns = now;
}

static bool fault_present(void)
{
	struct path path;

	if (kern_path(THROTTLE_FAULT, LOOKUP_FOLLOW, &path))
		return false;
	path_put(&path);
	return true;
}

/* Notice the fault file appearing or going away (checked on every read). */
static bool model_sync_fault(void)
{
	bool fault = fault_present();
	unsigned long flags;

	spin_lock_irqsave(&model_lock, flags);
	if (fault != model_fault) {
		model_fault = fault;
		model_retarget_locked(ktime_get_ns());
	}
	spin_unlock_irqrestore(&model_lock, flags);
	return fault;
}

static int model_temp(struct zone_model *z)
{
	unsigned long flags;
	int t;

	model_sync_fault();
	spin_lock_irqsave(&model_lock, flags);
	t = zone_temp_locked(z, ktime_get_ns());
	spin_unlock_irqrestore(&model_lock, flags);
	return t;
}

/* ---------------------------------------------------------------- NPU */

struct rknpu_twin {
	struct device *dev;
	struct devfreq *devfreq;
	struct mutex lock;
	unsigned long current_freq;
	unsigned long current_volt;
	unsigned long ondemand_freq;
	unsigned long power_put_delay;
	atomic_t power_refcount;
	atomic_t cmdline_power_refcount;
	u64 power_off_at_ns;
	bool busy;
	bool bypass_soft_reset;
	struct dentry *debugfs_dir;
	struct proc_dir_entry *procfs_dir;
};

static struct rknpu_twin *npu;
static int drv_major, drv_minor, drv_patch;

static void rknpu_power_get(struct rknpu_twin *r)
{
	atomic_inc(&r->power_refcount);
}

/* The vendor driver powers off power_put_delay ms after the last put. */
static void rknpu_power_put(struct rknpu_twin *r)
{
	if (atomic_dec_if_positive(&r->power_refcount) == 0)
		WRITE_ONCE(r->power_off_at_ns, ktime_get_ns() + (u64)r->power_put_delay * NSEC_PER_MSEC);
}

static bool rknpu_powered(struct rknpu_twin *r)
{
	return atomic_read(&r->power_refcount) > 0 || ktime_get_ns() < READ_ONCE(r->power_off_at_ns);
}

/* The clock the NPU runs at: the devfreq OPP, unless thermal throttling holds it lower. */
static unsigned long npu_effective_freq(struct rknpu_twin *r, unsigned long *volt)
{
	unsigned long freq = READ_ONCE(r->current_freq);
	unsigned long uv = READ_ONCE(r->current_volt);
	int i;

	if (model_sync_fault() && freq > THROTTLE_NPU_HZ) {
		freq = THROTTLE_NPU_HZ;
		for (i = 0; i < ARRAY_SIZE(npu_opps); i++)
			if (npu_opps[i].hz == freq)
				uv = npu_opps[i].uv;
	}
	if (volt)
		*volt = uv;
	return freq;
}

static int npu_devfreq_target(struct device *dev, unsigned long *freq, u32 flags)
{
	struct dev_pm_opp *opp = devfreq_recommended_opp(dev, freq, flags);

	if (IS_ERR(opp))
		return PTR_ERR(opp);
	WRITE_ONCE(npu->current_volt, dev_pm_opp_get_voltage(opp));
	dev_pm_opp_put(opp);
	WRITE_ONCE(npu->current_freq, *freq);
	return 0;
}

static int npu_devfreq_get_cur_freq(struct device *dev, unsigned long *freq)
{
	*freq = npu_effective_freq(npu, NULL);
	return 0;
}

static struct devfreq_dev_profile npu_devfreq_profile = {
	.target = npu_devfreq_target,
	.get_cur_freq = npu_devfreq_get_cur_freq,
};

/* vendor rknpu_devfreq.c: the governor follows what the driver asks for */
static int rknpu_ondemand_func(struct devfreq *df, unsigned long *freq)
{
	struct rknpu_twin *r = df->data;

	if (r && r->ondemand_freq)
		*freq = r->ondemand_freq;
	else
		*freq = df->previous_freq;
	return 0;
}

static int noop_handler(struct devfreq *df, unsigned int event, void *data)
{
	return 0;
}

static struct devfreq_governor gov_rknpu_ondemand = {
	.name = "rknpu_ondemand",
	.get_target_freq = rknpu_ondemand_func,
	.event_handler = noop_handler,
};

/* DDR: the vendor dmc_ondemand follows system status; at rest it keeps its level. */
static int keep_freq_func(struct devfreq *df, unsigned long *freq)
{
	*freq = df->previous_freq;
	return 0;
}

static struct devfreq_governor gov_dmc_ondemand = {
	.name = "dmc_ondemand",
	.get_target_freq = keep_freq_func,
	.event_handler = noop_handler,
};

/* The Debian kernel builds neither performance nor powersave; the vendor one has both. */
static int performance_func(struct devfreq *df, unsigned long *freq)
{
	*freq = DEVFREQ_MAX_FREQ;
	return 0;
}

static int powersave_func(struct devfreq *df, unsigned long *freq)
{
	*freq = DEVFREQ_MIN_FREQ;
	return 0;
}

static int update_on_start(struct devfreq *df, unsigned int event, void *data)
{
	int ret = 0;

	if (event == DEVFREQ_GOV_START) {
		mutex_lock(&df->lock);
		ret = update_devfreq(df);
		mutex_unlock(&df->lock);
	}
	return ret;
}

static struct devfreq_governor gov_performance = {
	.name = "performance",
	.get_target_freq = performance_func,
	.event_handler = update_on_start,
};

static struct devfreq_governor gov_powersave = {
	.name = "powersave",
	.get_target_freq = powersave_func,
	.event_handler = update_on_start,
};

static struct devfreq_governor *twin_governors[] = {
	&gov_rknpu_ondemand, &gov_dmc_ondemand, &gov_performance, &gov_powersave,
};

/* ------------------------------------------- rknpu debugfs and procfs files */

struct rknpu_file {
	const char *name;
	int (*show)(struct seq_file *m, void *data);
	ssize_t (*write)(const char *buf, size_t len);
};

static int version_show(struct seq_file *m, void *data)
{
	seq_printf(m, "%s: v%d.%d.%d\n", "RKNPU driver", drv_major, drv_minor, drv_patch);
	return 0;
}

static int load_show(struct seq_file *m, void *data)
{
	unsigned long flags;
	int i, load[2];

	spin_lock_irqsave(&model_lock, flags);
	load_account_locked(ktime_get_ns());
	load[0] = load_record[0];
	load[1] = load_record[1];
	spin_unlock_irqrestore(&model_lock, flags);

	seq_puts(m, "NPU load: ");
	for (i = 0; i < 2; i++) {
		seq_printf(m, " Core%d: ", i);
		seq_printf(m, "%2.d%%,", load[i]);
	}
	seq_puts(m, "\n");
	return 0;
}

static int power_show(struct seq_file *m, void *data)
{
	seq_puts(m, rknpu_powered(npu) ? "on\n" : "off\n");
	return 0;
}

static ssize_t power_write(const char *buf, size_t len)
{
	if (strcmp(buf, "on") == 0) {
		atomic_inc(&npu->cmdline_power_refcount);
		rknpu_power_get(npu);
		pr_info(LOG_TAG ": rknpu power is on!");
	} else if (strcmp(buf, "off") == 0) {
		if (atomic_read(&npu->power_refcount) > 0 &&
		    atomic_dec_if_positive(&npu->cmdline_power_refcount) >= 0) {
			atomic_sub(atomic_read(&npu->cmdline_power_refcount), &npu->power_refcount);
			atomic_set(&npu->cmdline_power_refcount, 0);
			rknpu_power_put(npu);
		}
		if (atomic_read(&npu->power_refcount) <= 0)
			pr_info(LOG_TAG ": rknpu power is off!");
	} else {
		pr_err(LOG_TAG ": rknpu power node params is invalid!");
	}
	return len;
}

static int delayms_show(struct seq_file *m, void *data)
{
	seq_printf(m, "%lu\n", npu->power_put_delay);
	return 0;
}

static ssize_t delayms_write(const char *buf, size_t len)
{
	unsigned long delay;

	if (kstrtoul(buf, 10, &delay)) {
		pr_err(LOG_TAG ": failed to parse power put delay string: %s\n", buf);
		return -EFAULT;
	}
	npu->power_put_delay = delay;
	pr_info(LOG_TAG ": set rknpu power put delay time %lums\n", npu->power_put_delay);
	return len;
}

static int freq_show(struct seq_file *m, void *data)
{
	unsigned long freq;

	rknpu_power_get(npu);
	freq = npu_effective_freq(npu, NULL);
	rknpu_power_put(npu);
	seq_printf(m, "%lu\n", freq);
	return 0;
}

static ssize_t freq_write(const char *buf, size_t len)
{
	unsigned long freq;

	if (kstrtoul(buf, 10, &freq)) {
		pr_err(LOG_TAG ": failed to parse freq string: %s\n", buf);
		return -EFAULT;
	}
	if (!npu->devfreq)
		return -EFAULT;
	rknpu_power_get(npu);
	if (freq != READ_ONCE(npu->current_freq)) {
		npu->ondemand_freq = freq;
		mutex_lock(&npu->devfreq->lock);
		update_devfreq(npu->devfreq);
		mutex_unlock(&npu->devfreq->lock);
	}
	rknpu_power_put(npu);
	return len;
}

static int volt_show(struct seq_file *m, void *data)
{
	unsigned long volt;

	npu_effective_freq(npu, &volt);
	seq_printf(m, "%lu\n", volt);
	return 0;
}

static int reset_show(struct seq_file *m, void *data)
{
	seq_puts(m, npu->bypass_soft_reset ? "off\n" : "on\n");
	return 0;
}

static ssize_t reset_write(const char *buf, size_t len)
{
	if (strcmp(buf, "on") == 0)
		npu->bypass_soft_reset = false;
	else if (strcmp(buf, "off") == 0)
		npu->bypass_soft_reset = true;
	/* "1" soft-resets a powered NPU: nothing to show for it here */
	return len;
}

static const struct rknpu_file rknpu_files[] = {
	{ "version", version_show, NULL },
	{ "load", load_show, NULL },
	{ "power", power_show, power_write },
	{ "freq", freq_show, freq_write },
	{ "volt", volt_show, NULL },
	{ "delayms", delayms_show, delayms_write },
	{ "reset", reset_show, reset_write },
};

/* As rknpu_debugger.c: at most 15 bytes, the last one (the newline) dropped. */
static ssize_t rknpu_file_write(const struct rknpu_file *f, const char __user *ubuf, size_t len)
{
	char buf[16];

	if (!f->write)
		return len;
	if (len == 0 || len > sizeof(buf) - 1)
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len - 1] = '\0';
	return f->write(buf, len);
}

static int rknpu_debugfs_open(struct inode *inode, struct file *file)
{
	const struct rknpu_file *f = inode->i_private;

	return single_open(file, f->show, (void *)f);
}

static ssize_t rknpu_debugfs_write(struct file *file, const char __user *ubuf, size_t len, loff_t *off)
{
	struct seq_file *m = file->private_data;

	return rknpu_file_write(m->private, ubuf, len);
}

static const struct file_operations rknpu_debugfs_fops = {
	.owner = THIS_MODULE,
	.open = rknpu_debugfs_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
	.write = rknpu_debugfs_write,
};

static int rknpu_procfs_open(struct inode *inode, struct file *file)
{
	const struct rknpu_file *f = pde_data(inode);

	return single_open(file, f->show, (void *)f);
}

static const struct proc_ops rknpu_procfs_fops = {
	.proc_open = rknpu_procfs_open,
	.proc_read = seq_read,
	.proc_lseek = seq_lseek,
	.proc_release = single_release,
	.proc_write = rknpu_debugfs_write,
};

static void rknpu_debugger_init(struct rknpu_twin *r)
{
	int i;

	r->debugfs_dir = debugfs_create_dir("rknpu", NULL);
	r->procfs_dir = proc_mkdir("rknpu", NULL);
	for (i = 0; i < ARRAY_SIZE(rknpu_files); i++) {
		void *data = (void *)&rknpu_files[i];

		debugfs_create_file(rknpu_files[i].name, S_IFREG | 0444, r->debugfs_dir, data, &rknpu_debugfs_fops);
		if (r->procfs_dir)
			proc_create_data(rknpu_files[i].name, S_IFREG | 0444, r->procfs_dir, &rknpu_procfs_fops, data);
	}
}

/* ------------------------------------------------------ devfreq devices */

static int add_opps(struct device *dev, const struct opp_entry *opps, int n, unsigned long cap)
{
	int i, ret;

	for (i = 0; i < n; i++) {
		if (cap && opps[i].hz > cap)
			break;
		ret = dev_pm_opp_add(dev, opps[i].hz, opps[i].uv);
		if (ret)
			return ret;
	}
	return 0;
}

static const char *drm_driver_date(void)
{
	if (drv_major == 0 && drv_minor == 9 && drv_patch == 6)
		return "20240322";
	if (drv_major == 0 && drv_minor == 9 && drv_patch == 7)
		return "20240424";
	return "20240828";
}

static int rknpu_probe(struct platform_device *pdev)
{
	struct device *dev = &pdev->dev;
	struct rknpu_twin *r;
	int ret;

	r = devm_kzalloc(dev, sizeof(*r), GFP_KERNEL);
	if (!r)
		return -ENOMEM;
	r->dev = dev;
	mutex_init(&r->lock);
	atomic_set(&r->power_refcount, 0);
	atomic_set(&r->cmdline_power_refcount, 0);
	r->power_put_delay = POWER_PUT_DELAY_MS;
	r->current_freq = npu_freq_cap && npu_freq_cap < NPU_INIT_HZ ? npu_freq_cap : NPU_INIT_HZ;
	npu = r;

	dev_info(dev, LOG_TAG ": rknpu iommu is enabled, using iommu mode\n");

	ret = add_opps(dev, npu_opps, ARRAY_SIZE(npu_opps), npu_freq_cap);
	if (ret)
		return ret;
	npu_devfreq_target(dev, &r->current_freq, 0);
	npu_devfreq_profile.initial_freq = r->current_freq;
	r->devfreq = devfreq_add_device(dev, &npu_devfreq_profile, "rknpu_ondemand", r);
	if (IS_ERR(r->devfreq)) {
		ret = PTR_ERR(r->devfreq);
		r->devfreq = NULL;
		dev_pm_opp_remove_all_dynamic(dev);
		dev_err(dev, LOG_TAG ": failed to add devfreq: %d\n", ret);
		return ret;
	}

	pr_info("[drm] Initialized rknpu %d.%d.%d %s for %s on minor %d\n",
		drv_major, drv_minor, drv_patch, drm_driver_date(), dev_name(dev), 1);
	dev_info(dev, LOG_TAG ": nbuf region: [0x%016llx, 0x%016llx), nbuf size: 0x%llx\n",
		 0x3fe80000ULL, 0x3ff80000ULL, 0x100000ULL);

	rknpu_debugger_init(r);
	platform_set_drvdata(pdev, r);
	return 0;
}

static int rknpu_remove(struct platform_device *pdev)
{
	struct rknpu_twin *r = platform_get_drvdata(pdev);

	debugfs_remove_recursive(r->debugfs_dir);
	proc_remove(r->procfs_dir);
	devfreq_remove_device(r->devfreq);
	/* the OPP table outlives the device unless removed: a reload would find it */
	dev_pm_opp_remove_all_dynamic(&pdev->dev);
	npu = NULL;
	return 0;
}

struct simple_devfreq {
	const struct opp_entry *opps;
	int nopps;
	unsigned long init_hz;
	const char *governor;
	unsigned long cur;
	struct devfreq *devfreq;
	struct devfreq_dev_profile profile;
};

static int simple_target(struct device *dev, unsigned long *freq, u32 flags)
{
	struct simple_devfreq *s = dev_get_drvdata(dev);
	struct dev_pm_opp *opp = devfreq_recommended_opp(dev, freq, flags);

	if (IS_ERR(opp))
		return PTR_ERR(opp);
	dev_pm_opp_put(opp);
	s->cur = *freq;
	return 0;
}

static int simple_cur_freq(struct device *dev, unsigned long *freq)
{
	struct simple_devfreq *s = dev_get_drvdata(dev);

	*freq = s->cur;
	return 0;
}

/* simple_ondemand asks for a status; an idle GPU reports none of its time busy */
static int simple_status(struct device *dev, struct devfreq_dev_status *st)
{
	struct simple_devfreq *s = dev_get_drvdata(dev);

	st->busy_time = 0;
	st->total_time = 1;
	st->current_frequency = s->cur;
	return 0;
}

static struct simple_devfreq gpu_df = {
	.opps = gpu_opps, .nopps = ARRAY_SIZE(gpu_opps), .init_hz = 300000000,
	.governor = "simple_ondemand",
};
static struct simple_devfreq dmc_df = {
	.opps = dmc_opps, .nopps = ARRAY_SIZE(dmc_opps), .init_hz = 528000000,
	.governor = "dmc_ondemand",
};

static int simple_probe(struct platform_device *pdev)
{
	struct simple_devfreq *s = (void *)platform_get_device_id(pdev)->driver_data;
	struct device *dev = &pdev->dev;
	struct devfreq *df;
	int ret;

	platform_set_drvdata(pdev, s);
	ret = add_opps(dev, s->opps, s->nopps, 0);
	if (ret)
		return ret;
	s->cur = s->init_hz;
	s->profile.initial_freq = s->init_hz;
	s->profile.target = simple_target;
	s->profile.get_cur_freq = simple_cur_freq;
	s->profile.get_dev_status = simple_status;
	df = devfreq_add_device(dev, &s->profile, s->governor, NULL);
	if (IS_ERR(df))
		df = devfreq_add_device(dev, &s->profile, "userspace", NULL);
	if (IS_ERR(df)) {
		dev_pm_opp_remove_all_dynamic(dev);
		return PTR_ERR(df);
	}
	s->devfreq = df;
	return 0;
}

static int simple_remove(struct platform_device *pdev)
{
	struct simple_devfreq *s = platform_get_drvdata(pdev);

	devfreq_remove_device(s->devfreq);
	dev_pm_opp_remove_all_dynamic(&pdev->dev);
	return 0;
}

static const struct platform_device_id rknpu_ids[] = { { "27700000.npu", 0 }, {} };
static const struct platform_device_id mali_ids[] = { { "27800000.gpu", (kernel_ulong_t)&gpu_df }, {} };
static const struct platform_device_id dmc_ids[] = { { "dmc", (kernel_ulong_t)&dmc_df }, {} };

static struct platform_driver rknpu_driver = {
	.probe = rknpu_probe,
	.remove = rknpu_remove,
	.id_table = rknpu_ids,
	.driver = { .name = "RKNPU" },
};
static struct platform_driver mali_driver = {
	.probe = simple_probe,
	.remove = simple_remove,
	.id_table = mali_ids,
	.driver = { .name = "mali" },
};
static struct platform_driver dmc_driver = {
	.probe = simple_probe,
	.remove = simple_remove,
	.id_table = dmc_ids,
	.driver = { .name = "rockchip-dmc" },
};
static struct platform_driver *twin_drivers[] = { &rknpu_driver, &mali_driver, &dmc_driver };
static const char *const twin_devices[] = { "dmc", "27700000.npu", "27800000.gpu" };
static struct platform_device *twin_pdevs[ARRAY_SIZE(twin_devices)];

/* ---------------------------------------------------------------- thermal */

static int tz_get_temp(struct thermal_zone_device *tz, int *temp)
{
	*temp = model_temp(tz->devdata);
	return 0;
}

static int tz_get_trip_type(struct thermal_zone_device *tz, int trip, enum thermal_trip_type *type)
{
	struct zone_model *z = tz->devdata;

	if (trip < 0 || trip >= z->ntrips)
		return -EINVAL;
	*type = z->trips[trip].type;
	return 0;
}

static int tz_get_trip_temp(struct thermal_zone_device *tz, int trip, int *temp)
{
	struct zone_model *z = tz->devdata;

	if (trip < 0 || trip >= z->ntrips)
		return -EINVAL;
	*temp = z->trips[trip].temperature;
	return 0;
}

static int tz_get_trip_hyst(struct thermal_zone_device *tz, int trip, int *hyst)
{
	struct zone_model *z = tz->devdata;

	if (trip < 0 || trip >= z->ntrips)
		return -EINVAL;
	*hyst = z->trips[trip].hysteresis;
	return 0;
}

static struct thermal_zone_device_ops tz_ops = {
	.get_temp = tz_get_temp,
	.get_trip_type = tz_get_trip_type,
	.get_trip_temp = tz_get_trip_temp,
	.get_trip_hyst = tz_get_trip_hyst,
};

static void thermal_unregister_all(void)
{
	int i;

	for (i = ARRAY_SIZE(zones) - 1; i >= 0; i--) {
		if (!IS_ERR_OR_NULL(zones[i].tz))
			thermal_zone_device_unregister(zones[i].tz);
		zones[i].tz = NULL;
	}
}

static int thermal_register_all(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(zones); i++) {
		/* no polling: the kernel reads a zone when someone asks */
		zones[i].tz = thermal_zone_device_register(zones[i].type, zones[i].ntrips, 0, &zones[i],
							   &tz_ops, NULL, 0, 0);
		if (IS_ERR(zones[i].tz)) {
			int ret = PTR_ERR(zones[i].tz);

			zones[i].tz = NULL;
			thermal_unregister_all();
			return ret;
		}
		thermal_zone_device_enable(zones[i].tz);
	}
	return 0;
}

/* ---------------------------------------------------- cpufreq and cpuidle */

static const unsigned int little_khz[] = {
	408000, 600000, 816000, 1008000, 1200000, 1416000, 1608000, 1800000, 2016000, 2208000,
};
static const unsigned int big_khz[] = {
	408000, 600000, 816000, 1008000, 1200000, 1416000, 1608000, 1800000, 2016000, 2208000, 2304000,
};
static const char *const cpu_governors[] = {
	"conservative", "ondemand", "userspace", "powersave", "performance", "schedutil",
};

struct twin_policy {
	struct kobject kobj;
	int first_cpu;
	const unsigned int *khz;
	int n;
	struct mutex lock;
	unsigned int cur, min, max, setspeed;
	const char *governor;
};

static struct twin_policy policies[2] = {
	{ .first_cpu = 0, .khz = little_khz, .n = ARRAY_SIZE(little_khz) },
	{ .first_cpu = 4, .khz = big_khz, .n = ARRAY_SIZE(big_khz) },
};

/* lowest table frequency at or above target (RELATION_L), highest at or below (RELATION_H) */
static unsigned int resolve_l(struct twin_policy *p, unsigned int khz)
{
	int i;

	for (i = 0; i < p->n; i++)
		if (p->khz[i] >= khz)
			return p->khz[i];
	return p->khz[p->n - 1];
}

static unsigned int resolve_h(struct twin_policy *p, unsigned int khz)
{
	int i;

	for (i = p->n - 1; i >= 0; i--)
		if (p->khz[i] <= khz)
			return p->khz[i];
	return p->khz[0];
}

/* What the governor makes of the limits: the twin's CPUs are always idle. */
static void policy_apply_locked(struct twin_policy *p)
{
	unsigned int target;

	if (!strcmp(p->governor, "performance"))
		target = p->max;
	else if (!strcmp(p->governor, "userspace"))
		target = p->setspeed;
	else
		target = p->min;
	target = clamp(target, p->min, p->max);
	p->cur = resolve_l(p, target);
	if (p->cur > p->max)
		p->cur = p->max;
}

struct policy_attr {
	struct attribute attr;
	ssize_t (*show)(struct twin_policy *p, char *buf);
	ssize_t (*store)(struct twin_policy *p, const char *buf, size_t count);
};

/*
 * The CPUs of a policy: the RK3576's 0-3 and 4-7 on a guest with 8 CPUs; on a smaller guest the
 * first half of its CPUs are the A53 cluster and the rest the A72 one, so that related_cpus names
 * CPUs that /proc/stat shows (with 2 CPUs: policy0 is cpu0, policy4 is cpu1).
 */
static ssize_t cpus_show(struct twin_policy *p, char *buf)
{
	int i, len = 0, nr = num_possible_cpus();
	int first = p->first_cpu, count = 4;

	if (nr < 8) {
		count = p->first_cpu ? nr - nr / 2 : (nr > 1 ? nr / 2 : 1);
		first = p->first_cpu ? (nr > 1 ? nr / 2 : 0) : 0;
	}
	for (i = 0; i < count; i++)
		len += sysfs_emit_at(buf, len, "%d ", first + i);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

static ssize_t avail_freqs_show(struct twin_policy *p, char *buf)
{
	int i, len = 0;

	for (i = 0; i < p->n; i++)
		len += sysfs_emit_at(buf, len, "%u ", p->khz[i]);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

static ssize_t avail_govs_show(struct twin_policy *p, char *buf)
{
	int i, len = 0;

	for (i = 0; i < ARRAY_SIZE(cpu_governors); i++)
		len += sysfs_emit_at(buf, len, "%s ", cpu_governors[i]);
	len += sysfs_emit_at(buf, len, "\n");
	return len;
}

static ssize_t cur_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%u\n", p->cur);
}

static ssize_t cpuinfo_max_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%u\n", p->khz[p->n - 1]);
}

static ssize_t cpuinfo_min_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%u\n", p->khz[0]);
}

static ssize_t latency_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "40000\n");
}

static ssize_t driver_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "cpufreq-dt\n");
}

static ssize_t governor_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%s\n", p->governor);
}

static ssize_t governor_store(struct twin_policy *p, const char *buf, size_t count)
{
	char name[16];
	int i;

	if (sscanf(buf, "%15s", name) != 1)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(cpu_governors); i++) {
		if (!strcmp(name, cpu_governors[i])) {
			mutex_lock(&p->lock);
			if (strcmp(p->governor, "userspace") && !strcmp(cpu_governors[i], "userspace"))
				p->setspeed = p->cur;
			p->governor = cpu_governors[i];
			policy_apply_locked(p);
			mutex_unlock(&p->lock);
			return count;
		}
	}
	return -EINVAL;
}

static ssize_t setspeed_show(struct twin_policy *p, char *buf)
{
	if (strcmp(p->governor, "userspace"))
		return sysfs_emit(buf, "<unsupported>\n");
	return sysfs_emit(buf, "%u\n", p->setspeed);
}

static ssize_t setspeed_store(struct twin_policy *p, const char *buf, size_t count)
{
	unsigned int khz;

	if (sscanf(buf, "%u", &khz) != 1)
		return -EINVAL;
	mutex_lock(&p->lock);
	if (strcmp(p->governor, "userspace")) {
		mutex_unlock(&p->lock);
		return -EINVAL;
	}
	p->setspeed = khz;
	policy_apply_locked(p);
	mutex_unlock(&p->lock);
	return count;
}

static ssize_t max_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%u\n", p->max);
}

static ssize_t min_show(struct twin_policy *p, char *buf)
{
	return sysfs_emit(buf, "%u\n", p->min);
}

static ssize_t max_store(struct twin_policy *p, const char *buf, size_t count)
{
	unsigned int khz;

	if (kstrtouint(buf, 0, &khz))
		return -EINVAL;
	mutex_lock(&p->lock);
	p->max = resolve_h(p, max(khz, p->min));
	policy_apply_locked(p);
	mutex_unlock(&p->lock);
	return count;
}

static ssize_t min_store(struct twin_policy *p, const char *buf, size_t count)
{
	unsigned int khz;

	if (kstrtouint(buf, 0, &khz))
		return -EINVAL;
	mutex_lock(&p->lock);
	p->min = resolve_l(p, min(khz, p->max));
	policy_apply_locked(p);
	mutex_unlock(&p->lock);
	return count;
}

#define PATTR(_name, _mode, _show, _store) \
	static struct policy_attr pa_##_name = { .attr = { .name = #_name, .mode = _mode }, \
						 .show = _show, .store = _store }
PATTR(affected_cpus, 0444, cpus_show, NULL);
PATTR(related_cpus, 0444, cpus_show, NULL);
PATTR(cpuinfo_cur_freq, 0400, cur_show, NULL);
PATTR(cpuinfo_max_freq, 0444, cpuinfo_max_show, NULL);
PATTR(cpuinfo_min_freq, 0444, cpuinfo_min_show, NULL);
PATTR(cpuinfo_transition_latency, 0444, latency_show, NULL);
PATTR(scaling_available_frequencies, 0444, avail_freqs_show, NULL);
PATTR(scaling_available_governors, 0444, avail_govs_show, NULL);
PATTR(scaling_cur_freq, 0444, cur_show, NULL);
PATTR(scaling_driver, 0444, driver_show, NULL);
PATTR(scaling_governor, 0644, governor_show, governor_store);
PATTR(scaling_max_freq, 0644, max_show, max_store);
PATTR(scaling_min_freq, 0644, min_show, min_store);
PATTR(scaling_setspeed, 0644, setspeed_show, setspeed_store);

static struct attribute *policy_attrs[] = {
	&pa_affected_cpus.attr, &pa_related_cpus.attr, &pa_cpuinfo_cur_freq.attr,
	&pa_cpuinfo_max_freq.attr, &pa_cpuinfo_min_freq.attr, &pa_cpuinfo_transition_latency.attr,
	&pa_scaling_available_frequencies.attr, &pa_scaling_available_governors.attr,
	&pa_scaling_cur_freq.attr, &pa_scaling_driver.attr, &pa_scaling_governor.attr,
	&pa_scaling_max_freq.attr, &pa_scaling_min_freq.attr, &pa_scaling_setspeed.attr, NULL,
};
ATTRIBUTE_GROUPS(policy);

static ssize_t policy_attr_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct policy_attr *a = container_of(attr, struct policy_attr, attr);

	return a->show(container_of(kobj, struct twin_policy, kobj), buf);
}

static ssize_t policy_attr_store(struct kobject *kobj, struct attribute *attr, const char *buf, size_t count)
{
	struct policy_attr *a = container_of(attr, struct policy_attr, attr);

	if (!a->store)
		return -EIO;
	return a->store(container_of(kobj, struct twin_policy, kobj), buf, count);
}

static const struct sysfs_ops policy_sysfs_ops = { .show = policy_attr_show, .store = policy_attr_store };

static void static_kobj_release(struct kobject *kobj)
{
}

static struct kobj_type policy_ktype = {
	.sysfs_ops = &policy_sysfs_ops,
	.default_groups = policy_groups,
	.release = static_kobj_release,
};

/* cpuidle: WFI and the vendor DTS CPU_SLEEP state (entry 120 + exit 250 us, residency 900 us) */
struct twin_idle_state {
	struct kobject kobj;
	int index;
	unsigned int disable;
};

struct twin_cpu {
	struct kobject *cpu_kobj; /* the real cpuN device, or one of ours */
	bool own_cpu_kobj;
	struct kobject *cpuidle;
	struct twin_idle_state states[2];
	bool linked;
};

static struct twin_cpu cpus[8];

struct idle_attr {
	struct attribute attr;
	ssize_t (*show)(struct twin_idle_state *s, char *buf);
	ssize_t (*store)(struct twin_idle_state *s, const char *buf, size_t count);
};

static ssize_t idle_name_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "%s\n", s->index ? "cpu-sleep" : "WFI");
}

static ssize_t idle_desc_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "%s\n", s->index ? "cpu-sleep" : "ARM WFI");
}

static ssize_t idle_latency_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "%u\n", s->index ? 370 : 1);
}

static ssize_t idle_residency_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "%u\n", s->index ? 900 : 1);
}

static ssize_t idle_power_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "4294967295\n");
}

static ssize_t idle_zero_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "0\n");
}

static ssize_t idle_default_status_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "enabled\n");
}

static ssize_t idle_disable_show(struct twin_idle_state *s, char *buf)
{
	return sysfs_emit(buf, "%u\n", s->disable);
}

static ssize_t idle_disable_store(struct twin_idle_state *s, const char *buf, size_t count)
{
	unsigned int value;
	int err = kstrtouint(buf, 0, &value);

	if (err)
		return err;
	WRITE_ONCE(s->disable, value ? 1 : 0);
	return count;
}

#define IATTR(_name, _mode, _show, _store) \
	static struct idle_attr ia_##_name = { .attr = { .name = #_name, .mode = _mode }, \
					       .show = _show, .store = _store }
IATTR(name, 0444, idle_name_show, NULL);
IATTR(desc, 0444, idle_desc_show, NULL);
IATTR(latency, 0444, idle_latency_show, NULL);
IATTR(residency, 0444, idle_residency_show, NULL);
IATTR(power, 0444, idle_power_show, NULL);
IATTR(usage, 0444, idle_zero_show, NULL);
IATTR(time, 0444, idle_zero_show, NULL);
IATTR(rejected, 0444, idle_zero_show, NULL);
IATTR(above, 0444, idle_zero_show, NULL);
IATTR(below, 0444, idle_zero_show, NULL);
IATTR(default_status, 0444, idle_default_status_show, NULL);
IATTR(disable, 0644, idle_disable_show, idle_disable_store);

static struct attribute *idle_attrs[] = {
	&ia_name.attr, &ia_desc.attr, &ia_latency.attr, &ia_residency.attr, &ia_power.attr,
	&ia_usage.attr, &ia_time.attr, &ia_rejected.attr, &ia_above.attr, &ia_below.attr,
	&ia_default_status.attr, &ia_disable.attr, NULL,
};
ATTRIBUTE_GROUPS(idle);

static ssize_t idle_attr_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct idle_attr *a = container_of(attr, struct idle_attr, attr);

	return a->show(container_of(kobj, struct twin_idle_state, kobj), buf);
}

static ssize_t idle_attr_store(struct kobject *kobj, struct attribute *attr, const char *buf, size_t count)
{
	struct idle_attr *a = container_of(attr, struct idle_attr, attr);

	if (!a->store)
		return -EIO;
	return a->store(container_of(kobj, struct twin_idle_state, kobj), buf, count);
}

static const struct sysfs_ops idle_sysfs_ops = { .show = idle_attr_show, .store = idle_attr_store };

static struct kobj_type idle_ktype = {
	.sysfs_ops = &idle_sysfs_ops,
	.default_groups = idle_groups,
	.release = static_kobj_release,
};

static ssize_t online_show(struct kobject *kobj, struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "1\n");
}

static struct kobj_attribute cpu_online_attr = __ATTR(online, 0444, online_show, NULL);

static struct kobject *cpufreq_root;

/* /sys/devices/system/cpu/cpufreq exists (the cpufreq core made it) but is not exported. */
static struct kobject *find_child_kobj(struct kobject *parent, const char *name)
{
	struct kernfs_node *kn = kernfs_find_and_get(parent->sd, name);
	struct kobject *kobj = NULL;

	if (kn) {
		if (kernfs_type(kn) == KERNFS_DIR && kn->priv)
			kobj = kobject_get(kn->priv);
		kernfs_put(kn);
	}
	return kobj;
}

static void cpus_remove(void)
{
	int i, j;

	for (i = 7; i >= 0; i--) {
		struct twin_cpu *c = &cpus[i];

		for (j = 1; j >= 0; j--)
			if (c->states[j].kobj.state_initialized)
				kobject_put(&c->states[j].kobj);
		if (c->cpuidle)
			kobject_put(c->cpuidle);
		if (c->linked)
			sysfs_remove_link(c->cpu_kobj, "cpufreq");
		if (c->own_cpu_kobj)
			kobject_put(c->cpu_kobj);
		memset(c, 0, sizeof(*c));
	}
	for (i = 1; i >= 0; i--)
		if (policies[i].kobj.state_initialized)
			kobject_put(&policies[i].kobj);
	if (cpufreq_root)
		kobject_put(cpufreq_root);
	cpufreq_root = NULL;
}

static int cpus_add(void)
{
	struct device *cpu0 = get_cpu_device(0);
	struct kobject *cpu_root;
	int i, j, ret;

	if (!cpu0 || !cpu0->kobj.parent)
		return -ENODEV;
	cpu_root = cpu0->kobj.parent;
	cpufreq_root = find_child_kobj(cpu_root, "cpufreq");
	if (!cpufreq_root)
		return -ENODEV;

	for (i = 0; i < 2; i++) {
		struct twin_policy *p = &policies[i];

		mutex_init(&p->lock);
		p->governor = "ondemand";
		p->min = p->khz[0];
		p->max = p->khz[p->n - 1];
		policy_apply_locked(p);
		ret = kobject_init_and_add(&p->kobj, &policy_ktype, cpufreq_root, "policy%d", p->first_cpu);
		if (ret)
			goto fail;
	}

	for (i = 0; i < 8; i++) {
		struct twin_cpu *c = &cpus[i];
		struct device *cdev = get_cpu_device(i);

		if (cdev) {
			c->cpu_kobj = &cdev->kobj;
		} else {
			char name[8];

			snprintf(name, sizeof(name), "cpu%d", i);
			c->cpu_kobj = kobject_create_and_add(name, cpu_root);
			if (!c->cpu_kobj) {
				ret = -ENOMEM;
				goto fail;
			}
			c->own_cpu_kobj = true;
			ret = sysfs_create_file(c->cpu_kobj, &cpu_online_attr.attr);
			if (ret)
				goto fail;
		}
		ret = sysfs_create_link(c->cpu_kobj, &policies[i / 4].kobj, "cpufreq");
		if (ret && ret != -EEXIST)
			goto fail;
		c->linked = !ret;

		c->cpuidle = kobject_create_and_add("cpuidle", c->cpu_kobj);
		if (!c->cpuidle)
			continue; /* a real cpuidle driver got there first */
		for (j = 0; j < 2; j++) {
			c->states[j].index = j;
			ret = kobject_init_and_add(&c->states[j].kobj, &idle_ktype, c->cpuidle, "state%d", j);
			if (ret)
				goto fail;
		}
	}
	return 0;
fail:
	cpus_remove();
	return ret;
}

/* -------------------------------------------------- twin control: NPU load */

static int twin_load_set(const char *val, const struct kernel_param *kp)
{
	int c0, c1;
	bool busy;
	unsigned long flags;

	if (sscanf(val, "%d %d", &c0, &c1) != 2)
		return -EINVAL;
	c0 = clamp(c0, 0, 100);
	c1 = clamp(c1, 0, 100);
	model_sync_fault();
	spin_lock_irqsave(&model_lock, flags);
	load_account_locked(ktime_get_ns());
	npu_load[0] = c0;
	npu_load[1] = c1;
	model_retarget_locked(ktime_get_ns());
	spin_unlock_irqrestore(&model_lock, flags);

	busy = c0 || c1;
	if (npu && busy != npu->busy) {
		npu->busy = busy;
		if (busy)
			rknpu_power_get(npu);
		else
			rknpu_power_put(npu);
	}
	return 0;
}

static int twin_load_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%d %d\n", npu_load[0], npu_load[1]);
}

static const struct kernel_param_ops twin_load_ops = { .set = twin_load_set, .get = twin_load_get };
module_param_cb(twin_load, &twin_load_ops, NULL, 0644);
MODULE_PARM_DESC(twin_load, "NPU core loads in percent, \"CORE0 CORE1\"");

/* A new window length starts the accounting over: nothing recorded, a window opening now. */
static int load_window_set(const char *val, const struct kernel_param *kp)
{
	unsigned int ms;
	unsigned long flags;
	int ret = kstrtouint(val, 10, &ms);

	if (ret)
		return ret;
	if (!ms)
		return -EINVAL;
	spin_lock_irqsave(&model_lock, flags);
	load_account_locked(ktime_get_ns());
	load_window_ns = (u64)ms * NSEC_PER_MSEC;
	load_busy[0] = load_busy[1] = 0;
	load_record[0] = load_record[1] = 0;
	load_window_start_ns = load_counted_ns;
	spin_unlock_irqrestore(&model_lock, flags);
	return 0;
}

static int load_window_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%llu\n", div64_u64(load_window_ns, NSEC_PER_MSEC));
}

static const struct kernel_param_ops load_window_ops = { .set = load_window_set, .get = load_window_get };
module_param_cb(load_window_ms, &load_window_ops, NULL, 0644);
MODULE_PARM_DESC(load_window_ms, "the load file's accounting period in ms (the driver's 1 s, time-scaled)");

static int busy_ms_get(char *buf, const struct kernel_param *kp)
{
	unsigned long flags;
	u64 ns;

	spin_lock_irqsave(&model_lock, flags);
	load_account_locked(ktime_get_ns());
	ns = busy_total_ns;
	spin_unlock_irqrestore(&model_lock, flags);
	return sysfs_emit(buf, "%llu\n", div64_u64(ns, NSEC_PER_MSEC));
}

static const struct kernel_param_ops busy_ms_ops = { .get = busy_ms_get };
module_param_cb(twin_busy_ms, &busy_ms_ops, NULL, 0444);
MODULE_PARM_DESC(twin_busy_ms, "ms with any NPU core busy since the module loaded");

/* ---------------------------------------------------------------- init */

static void set_module_version(void)
{
	/* /sys/module/rknpu/version reads the driver version of this image */
	char *v = kstrdup(driver_version, GFP_KERNEL);

	if (v) {
		kfree(THIS_MODULE->version);
		THIS_MODULE->version = v;
	}
}

static void unregister_platform(void)
{
	int i;

	for (i = ARRAY_SIZE(twin_devices) - 1; i >= 0; i--) {
		if (!IS_ERR_OR_NULL(twin_pdevs[i]))
			platform_device_unregister(twin_pdevs[i]);
		twin_pdevs[i] = NULL;
	}
	for (i = ARRAY_SIZE(twin_drivers) - 1; i >= 0; i--)
		platform_driver_unregister(twin_drivers[i]);
}

static void remove_governors(void)
{
	int i;

	for (i = ARRAY_SIZE(twin_governors) - 1; i >= 0; i--)
		devfreq_remove_governor(twin_governors[i]);
}

static int __init rknpu_twin_init(void)
{
	int i, ret;

	if (sscanf(driver_version, "%d.%d.%d", &drv_major, &drv_minor, &drv_patch) != 3)
		return -EINVAL;
	set_module_version();

	spin_lock_irq(&model_lock);
	model_retarget_locked(ktime_get_ns());
	load_account_locked(ktime_get_ns());
	spin_unlock_irq(&model_lock);

	for (i = 0; i < ARRAY_SIZE(twin_governors); i++) {
		ret = devfreq_add_governor(twin_governors[i]);
		if (ret) {
			while (--i >= 0)
				devfreq_remove_governor(twin_governors[i]);
			return ret;
		}
	}
	for (i = 0; i < ARRAY_SIZE(twin_drivers); i++) {
		ret = platform_driver_register(twin_drivers[i]);
		if (ret) {
			while (--i >= 0)
				platform_driver_unregister(twin_drivers[i]);
			goto fail_governors;
		}
	}
	for (i = 0; i < ARRAY_SIZE(twin_devices); i++) {
		twin_pdevs[i] = platform_device_register_simple(twin_devices[i], PLATFORM_DEVID_NONE, NULL, 0);
		if (IS_ERR(twin_pdevs[i])) {
			ret = PTR_ERR(twin_pdevs[i]);
			goto fail_platform;
		}
	}
	ret = thermal_register_all();
	if (ret)
		goto fail_platform;
	ret = cpus_add();
	if (ret)
		goto fail_thermal;
	return 0;

fail_thermal:
	thermal_unregister_all();
fail_platform:
	unregister_platform();
fail_governors:
	remove_governors();
	return ret;
}

static void __exit rknpu_twin_exit(void)
{
	cpus_remove();
	thermal_unregister_all();
	unregister_platform();
	remove_governors();
}

module_init(rknpu_twin_init);
module_exit(rknpu_twin_exit);

MODULE_DESCRIPTION("RKNPU driver");
MODULE_LICENSE("GPL");
MODULE_VERSION("0.9.8");
MODULE_INFO(intree, "Y");
