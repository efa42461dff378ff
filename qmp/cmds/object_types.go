package cmds

// object-add's ObjectOptions union (qapi/qom.json, QEMU 7.2), member for member, so that
// the schema libvirt probes is QEMU's (object-add/arg-type/qom-type/^secret: JSON -object).
// Sizes are uint64 as QAPI's 'size' is; the schema shows every integer as "int".

// ObjectType is QAPI's ObjectType: the user-creatable QOM types object-add takes.
type ObjectType string

// EnumValues implements qmp.Enum.
func (ObjectType) EnumValues() []string {
	return []string{"authz-list", "authz-listfile", "authz-pam", "authz-simple", "can-bus", "can-host-socketcan", "colo-compare", "cryptodev-backend", "cryptodev-backend-builtin", "cryptodev-backend-lkcf", "cryptodev-vhost-user", "dbus-vmstate", "filter-buffer", "filter-dump", "filter-mirror", "filter-redirector", "filter-replay", "filter-rewriter", "input-barrier", "input-linux", "iothread", "main-loop", "memory-backend-epc", "memory-backend-file", "memory-backend-memfd", "memory-backend-ram", "pef-guest", "pr-manager-helper", "qtest", "rng-builtin", "rng-egd", "rng-random", "secret", "secret_keyring", "sev-guest", "thread-context", "s390-pv-guest", "throttle-group", "tls-creds-anon", "tls-creds-psk", "tls-creds-x509", "tls-cipher-suites", "x-remote-object", "x-vfio-user-server"}
}

// EnumFeatures implements qmp.EnumFeatures.
func (ObjectType) EnumFeatures() map[string][]string {
	return map[string][]string{"x-remote-object": {"unstable"}, "x-vfio-user-server": {"unstable"}}
}

// ObjectOptions is object-add's argument: qom-type, id and the type's members.
type ObjectOptions struct {
	QomType ObjectType `json:"qom-type"`
	ID      string     `json:"id"`
	Variant any        `json:"-" qapi:"variant"`
}

// UnionTag implements qmp.Union.
func (ObjectOptions) UnionTag() string { return "qom-type" }

// UnionVariants implements qmp.Union.
func (ObjectOptions) UnionVariants() map[string]any { return objectVariants }

// QAuthZListRule is an object-add member type (qapi/qom.json).
type QAuthZListRule struct {
	Match  string            `json:"match"`
	Policy QAuthZListPolicy  `json:"policy"`
	Format *QAuthZListFormat `json:"format,omitempty"`
}

// ObjectAuthzList is an object-add member type (qapi/qom.json).
type ObjectAuthzList struct {
	Policy *QAuthZListPolicy `json:"policy,omitempty"`
	Rules  []QAuthZListRule  `json:"rules,omitempty"`
}

// ObjectAuthzListfile is an object-add member type (qapi/qom.json).
type ObjectAuthzListfile struct {
	Filename string `json:"filename"`
	Refresh  *bool  `json:"refresh,omitempty"`
}

// ObjectAuthzPam is an object-add member type (qapi/qom.json).
type ObjectAuthzPam struct {
	Service string `json:"service"`
}

// ObjectAuthzSimple is an object-add member type (qapi/qom.json).
type ObjectAuthzSimple struct {
	Identity string `json:"identity"`
}

// ObjectCanHostSocketcan is an object-add member type (qapi/qom.json).
type ObjectCanHostSocketcan struct {
	If     string `json:"if"`
	Canbus string `json:"canbus"`
}

// ObjectColoCompare is an object-add member type (qapi/qom.json).
type ObjectColoCompare struct {
	PrimaryIn        string  `json:"primary_in"`
	SecondaryIn      string  `json:"secondary_in"`
	Outdev           string  `json:"outdev"`
	Iothread         string  `json:"iothread"`
	NotifyDev        *string `json:"notify_dev,omitempty"`
	CompareTimeout   *int64  `json:"compare_timeout,omitempty"`
	ExpiredScanCycle *int64  `json:"expired_scan_cycle,omitempty"`
	MaxQueueSize     *int64  `json:"max_queue_size,omitempty"`
	VnetHdrSupport   *bool   `json:"vnet_hdr_support,omitempty"`
}

// ObjectCryptodevBackend is an object-add member type (qapi/qom.json).
type ObjectCryptodevBackend struct {
	Queues *int64 `json:"queues,omitempty"`
}

// ObjectCryptodevVhostUser is an object-add member type (qapi/qom.json).
type ObjectCryptodevVhostUser struct {
	Queues  *int64 `json:"queues,omitempty"`
	Chardev string `json:"chardev"`
}

// ObjectDbusVmstate is an object-add member type (qapi/qom.json).
type ObjectDbusVmstate struct {
	Addr   string  `json:"addr"`
	IdList *string `json:"id-list,omitempty"`
}

// ObjectFilterBuffer is an object-add member type (qapi/qom.json).
type ObjectFilterBuffer struct {
	NetfilterProperties
	Interval int64 `json:"interval"`
}

// ObjectFilterDump is an object-add member type (qapi/qom.json).
type ObjectFilterDump struct {
	NetfilterProperties
	File   string `json:"file"`
	Maxlen *int64 `json:"maxlen,omitempty"`
}

// ObjectFilterMirror is an object-add member type (qapi/qom.json).
type ObjectFilterMirror struct {
	NetfilterProperties
	Outdev         string `json:"outdev"`
	VnetHdrSupport *bool  `json:"vnet_hdr_support,omitempty"`
}

// ObjectFilterRedirector is an object-add member type (qapi/qom.json).
type ObjectFilterRedirector struct {
	NetfilterProperties
	Indev          *string `json:"indev,omitempty"`
	Outdev         *string `json:"outdev,omitempty"`
	VnetHdrSupport *bool   `json:"vnet_hdr_support,omitempty"`
}

// ObjectFilterReplay is an object-add member type (qapi/qom.json).
type ObjectFilterReplay struct {
	NetfilterProperties
}

// ObjectFilterRewriter is an object-add member type (qapi/qom.json).
type ObjectFilterRewriter struct {
	NetfilterProperties
	VnetHdrSupport *bool `json:"vnet_hdr_support,omitempty"`
}

// ObjectInputBarrier is an object-add member type (qapi/qom.json).
type ObjectInputBarrier struct {
	Name    string  `json:"name"`
	Server  *string `json:"server,omitempty"`
	Port    *string `json:"port,omitempty"`
	XOrigin *string `json:"x-origin,omitempty"`
	YOrigin *string `json:"y-origin,omitempty"`
	Width   *string `json:"width,omitempty"`
	Height  *string `json:"height,omitempty"`
}

// ObjectInputLinux is an object-add member type (qapi/qom.json).
type ObjectInputLinux struct {
	Evdev      string          `json:"evdev"`
	GrabAll    *bool           `json:"grab_all,omitempty"`
	Repeat     *bool           `json:"repeat,omitempty"`
	GrabToggle *GrabToggleKeys `json:"grab-toggle,omitempty"`
}

// ObjectIothread is an object-add member type (qapi/qom.json).
type ObjectIothread struct {
	EventLoopBaseProperties
	PollMaxNs  *int64 `json:"poll-max-ns,omitempty"`
	PollGrow   *int64 `json:"poll-grow,omitempty"`
	PollShrink *int64 `json:"poll-shrink,omitempty"`
}

// ObjectMainLoop is an object-add member type (qapi/qom.json).
type ObjectMainLoop struct {
	EventLoopBaseProperties
}

// ObjectMemoryBackendEpc is an object-add member type (qapi/qom.json).
type ObjectMemoryBackendEpc struct {
	MemoryBackendProperties
}

// ObjectMemoryBackendFile is an object-add member type (qapi/qom.json).
type ObjectMemoryBackendFile struct {
	MemoryBackendProperties
	Align       *uint64 `json:"align,omitempty"`
	DiscardData *bool   `json:"discard-data,omitempty"`
	MemPath     string  `json:"mem-path"`
	Pmem        *bool   `json:"pmem,omitempty"`
	Readonly    *bool   `json:"readonly,omitempty"`
}

// ObjectMemoryBackendMemfd is an object-add member type (qapi/qom.json).
type ObjectMemoryBackendMemfd struct {
	MemoryBackendProperties
	Hugetlb     *bool   `json:"hugetlb,omitempty"`
	Hugetlbsize *uint64 `json:"hugetlbsize,omitempty"`
	Seal        *bool   `json:"seal,omitempty"`
}

// ObjectMemoryBackendRam is an object-add member type (qapi/qom.json).
type ObjectMemoryBackendRam struct {
	MemoryBackendProperties
}

// ObjectPrManagerHelper is an object-add member type (qapi/qom.json).
type ObjectPrManagerHelper struct {
	Path string `json:"path"`
}

// ObjectQtest is an object-add member type (qapi/qom.json).
type ObjectQtest struct {
	Chardev string  `json:"chardev"`
	Log     *string `json:"log,omitempty"`
}

// ObjectRngBuiltin is an object-add member type (qapi/qom.json).
type ObjectRngBuiltin struct {
	RngProperties
}

// ObjectRngEgd is an object-add member type (qapi/qom.json).
type ObjectRngEgd struct {
	RngProperties
	Chardev string `json:"chardev"`
}

// ObjectRngRandom is an object-add member type (qapi/qom.json).
type ObjectRngRandom struct {
	RngProperties
	Filename *string `json:"filename,omitempty"`
}

// ObjectSecret is an object-add member type (qapi/qom.json).
type ObjectSecret struct {
	SecretCommonProperties
	Data *string `json:"data,omitempty"`
	File *string `json:"file,omitempty"`
}

// ObjectSecretKeyring is an object-add member type (qapi/qom.json).
type ObjectSecretKeyring struct {
	SecretCommonProperties
	Serial int64 `json:"serial"`
}

// ObjectSevGuest is an object-add member type (qapi/qom.json).
type ObjectSevGuest struct {
	SevDevice       *string `json:"sev-device,omitempty"`
	DhCertFile      *string `json:"dh-cert-file,omitempty"`
	SessionFile     *string `json:"session-file,omitempty"`
	Policy          *int64  `json:"policy,omitempty"`
	Handle          *int64  `json:"handle,omitempty"`
	Cbitpos         *int64  `json:"cbitpos,omitempty"`
	ReducedPhysBits int64   `json:"reduced-phys-bits"`
	KernelHashes    *bool   `json:"kernel-hashes,omitempty"`
}

// ObjectThreadContext is an object-add member type (qapi/qom.json).
type ObjectThreadContext struct {
	CpuAffinity  []int64 `json:"cpu-affinity,omitempty"`
	NodeAffinity []int64 `json:"node-affinity,omitempty"`
}

// ThrottleLimits is an object-add member type (qapi/qom.json).
type ThrottleLimits struct {
	IopsTotal          *int64 `json:"iops-total,omitempty"`
	IopsTotalMax       *int64 `json:"iops-total-max,omitempty"`
	IopsTotalMaxLength *int64 `json:"iops-total-max-length,omitempty"`
	IopsRead           *int64 `json:"iops-read,omitempty"`
	IopsReadMax        *int64 `json:"iops-read-max,omitempty"`
	IopsReadMaxLength  *int64 `json:"iops-read-max-length,omitempty"`
	IopsWrite          *int64 `json:"iops-write,omitempty"`
	IopsWriteMax       *int64 `json:"iops-write-max,omitempty"`
	IopsWriteMaxLength *int64 `json:"iops-write-max-length,omitempty"`
	BpsTotal           *int64 `json:"bps-total,omitempty"`
	BpsTotalMax        *int64 `json:"bps-total-max,omitempty"`
	BpsTotalMaxLength  *int64 `json:"bps-total-max-length,omitempty"`
	BpsRead            *int64 `json:"bps-read,omitempty"`
	BpsReadMax         *int64 `json:"bps-read-max,omitempty"`
	BpsReadMaxLength   *int64 `json:"bps-read-max-length,omitempty"`
	BpsWrite           *int64 `json:"bps-write,omitempty"`
	BpsWriteMax        *int64 `json:"bps-write-max,omitempty"`
	BpsWriteMaxLength  *int64 `json:"bps-write-max-length,omitempty"`
	IopsSize           *int64 `json:"iops-size,omitempty"`
}

// ObjectThrottleGroup is an object-add member type (qapi/qom.json).
type ObjectThrottleGroup struct {
	Limits              *ThrottleLimits `json:"limits,omitempty"`
	XIopsTotal          *int64          `json:"x-iops-total,omitempty" qapi:"unstable"`
	XIopsTotalMax       *int64          `json:"x-iops-total-max,omitempty" qapi:"unstable"`
	XIopsTotalMaxLength *int64          `json:"x-iops-total-max-length,omitempty" qapi:"unstable"`
	XIopsRead           *int64          `json:"x-iops-read,omitempty" qapi:"unstable"`
	XIopsReadMax        *int64          `json:"x-iops-read-max,omitempty" qapi:"unstable"`
	XIopsReadMaxLength  *int64          `json:"x-iops-read-max-length,omitempty" qapi:"unstable"`
	XIopsWrite          *int64          `json:"x-iops-write,omitempty" qapi:"unstable"`
	XIopsWriteMax       *int64          `json:"x-iops-write-max,omitempty" qapi:"unstable"`
	XIopsWriteMaxLength *int64          `json:"x-iops-write-max-length,omitempty" qapi:"unstable"`
	XBpsTotal           *int64          `json:"x-bps-total,omitempty" qapi:"unstable"`
	XBpsTotalMax        *int64          `json:"x-bps-total-max,omitempty" qapi:"unstable"`
	XBpsTotalMaxLength  *int64          `json:"x-bps-total-max-length,omitempty" qapi:"unstable"`
	XBpsRead            *int64          `json:"x-bps-read,omitempty" qapi:"unstable"`
	XBpsReadMax         *int64          `json:"x-bps-read-max,omitempty" qapi:"unstable"`
	XBpsReadMaxLength   *int64          `json:"x-bps-read-max-length,omitempty" qapi:"unstable"`
	XBpsWrite           *int64          `json:"x-bps-write,omitempty" qapi:"unstable"`
	XBpsWriteMax        *int64          `json:"x-bps-write-max,omitempty" qapi:"unstable"`
	XBpsWriteMaxLength  *int64          `json:"x-bps-write-max-length,omitempty" qapi:"unstable"`
	XIopsSize           *int64          `json:"x-iops-size,omitempty" qapi:"unstable"`
}

// ObjectTlsCredsAnon is an object-add member type (qapi/qom.json).
type ObjectTlsCredsAnon struct {
	TlsCredsProperties
	Loaded *bool `json:"loaded,omitempty" qapi:"deprecated"`
}

// ObjectTlsCredsPsk is an object-add member type (qapi/qom.json).
type ObjectTlsCredsPsk struct {
	TlsCredsProperties
	Loaded   *bool   `json:"loaded,omitempty" qapi:"deprecated"`
	Username *string `json:"username,omitempty"`
}

// ObjectTlsCredsX509 is an object-add member type (qapi/qom.json).
type ObjectTlsCredsX509 struct {
	TlsCredsProperties
	Loaded      *bool   `json:"loaded,omitempty" qapi:"deprecated"`
	SanityCheck *bool   `json:"sanity-check,omitempty"`
	Passwordid  *string `json:"passwordid,omitempty"`
}

// ObjectTlsCipherSuites is an object-add member type (qapi/qom.json).
type ObjectTlsCipherSuites struct {
	TlsCredsProperties
}

// ObjectXRemoteObject is an object-add member type (qapi/qom.json).
type ObjectXRemoteObject struct {
	Fd    string `json:"fd"`
	Devid string `json:"devid"`
}

// ObjectXVfioUserServer is an object-add member type (qapi/qom.json).
type ObjectXVfioUserServer struct {
	Socket SocketAddress `json:"socket"`
	Device string        `json:"device"`
}

// QAuthZListPolicy is a QAPI enum of qapi/qom.json.
type QAuthZListPolicy string

// EnumValues implements qmp.Enum.
func (QAuthZListPolicy) EnumValues() []string { return []string{"deny", "allow"} }

// QAuthZListFormat is a QAPI enum of qapi/qom.json.
type QAuthZListFormat string

// EnumValues implements qmp.Enum.
func (QAuthZListFormat) EnumValues() []string { return []string{"exact", "glob"} }

// NetFilterDirection is a QAPI enum of qapi/qom.json.
type NetFilterDirection string

// EnumValues implements qmp.Enum.
func (NetFilterDirection) EnumValues() []string { return []string{"all", "rx", "tx"} }

// NetfilterInsert is a QAPI enum of qapi/qom.json.
type NetfilterInsert string

// EnumValues implements qmp.Enum.
func (NetfilterInsert) EnumValues() []string { return []string{"before", "behind"} }

// GrabToggleKeys is a QAPI enum of qapi/qom.json.
type GrabToggleKeys string

// EnumValues implements qmp.Enum.
func (GrabToggleKeys) EnumValues() []string {
	return []string{"ctrl-ctrl", "alt-alt", "shift-shift", "meta-meta", "scrolllock", "ctrl-scrolllock"}
}

// HostMemPolicy is a QAPI enum of qapi/qom.json.
type HostMemPolicy string

// EnumValues implements qmp.Enum.
func (HostMemPolicy) EnumValues() []string {
	return []string{"default", "preferred", "bind", "interleave"}
}

// QCryptoSecretFormat is a QAPI enum of qapi/qom.json.
type QCryptoSecretFormat string

// EnumValues implements qmp.Enum.
func (QCryptoSecretFormat) EnumValues() []string { return []string{"raw", "base64"} }

// QCryptoTLSCredsEndpoint is a QAPI enum of qapi/qom.json.
type QCryptoTLSCredsEndpoint string

// EnumValues implements qmp.Enum.
func (QCryptoTLSCredsEndpoint) EnumValues() []string { return []string{"client", "server"} }

// MemoryBackendProperties are the members every memory back-end has (a QAPI base type).
type MemoryBackendProperties struct {
	Dump                           *bool          `json:"dump,omitempty"`
	HostNodes                      []int64        `json:"host-nodes,omitempty"`
	Merge                          *bool          `json:"merge,omitempty"`
	Policy                         *HostMemPolicy `json:"policy,omitempty"`
	Prealloc                       *bool          `json:"prealloc,omitempty"`
	PreallocThreads                *uint32        `json:"prealloc-threads,omitempty"`
	PreallocContext                *string        `json:"prealloc-context,omitempty"`
	Share                          *bool          `json:"share,omitempty"`
	Reserve                        *bool          `json:"reserve,omitempty"`
	Size                           uint64         `json:"size"`
	XUseCanonicalPathForRamblockID *bool          `json:"x-use-canonical-path-for-ramblock-id,omitempty"`
}

// NetfilterProperties are the members every net filter has (a QAPI base type).
type NetfilterProperties struct {
	Netdev   string              `json:"netdev"`
	Queue    *NetFilterDirection `json:"queue,omitempty"`
	Status   *string             `json:"status,omitempty"`
	Position *string             `json:"position,omitempty"`
	Insert   *NetfilterInsert    `json:"insert,omitempty"`
}

// TlsCredsProperties are the members every TLS object has (a QAPI base type).
type TlsCredsProperties struct {
	VerifyPeer *bool                    `json:"verify-peer,omitempty"`
	Dir        *string                  `json:"dir,omitempty"`
	Endpoint   *QCryptoTLSCredsEndpoint `json:"endpoint,omitempty"`
	Priority   *string                  `json:"priority,omitempty"`
}

// EventLoopBaseProperties are the members every event loop has (a QAPI base type).
type EventLoopBaseProperties struct {
	AioMaxBatch   *int64 `json:"aio-max-batch,omitempty"`
	ThreadPoolMin *int64 `json:"thread-pool-min,omitempty"`
	ThreadPoolMax *int64 `json:"thread-pool-max,omitempty"`
}

// RngProperties are the members every rng back-end has (a QAPI base type).
type RngProperties struct {
	Opened *bool `json:"opened,omitempty" qapi:"deprecated"`
}

// SecretCommonProperties are the members every secret has (a QAPI base type).
type SecretCommonProperties struct {
	Loaded *bool                `json:"loaded,omitempty" qapi:"deprecated"`
	Format *QCryptoSecretFormat `json:"format,omitempty"`
	Keyid  *string              `json:"keyid,omitempty"`
	Iv     *string              `json:"iv,omitempty"`
}

// objectVariants are the types with members; can-bus, pef-guest and s390-pv-guest have
// none (implicit empty branches, listed last as QAPI lists them).
var objectVariants = map[string]any{
	"authz-list":                ObjectAuthzList{},
	"authz-listfile":            ObjectAuthzListfile{},
	"authz-pam":                 ObjectAuthzPam{},
	"authz-simple":              ObjectAuthzSimple{},
	"can-host-socketcan":        ObjectCanHostSocketcan{},
	"colo-compare":              ObjectColoCompare{},
	"cryptodev-backend":         ObjectCryptodevBackend{},
	"cryptodev-backend-builtin": ObjectCryptodevBackend{},
	"cryptodev-backend-lkcf":    ObjectCryptodevBackend{},
	"cryptodev-vhost-user":      ObjectCryptodevVhostUser{},
	"dbus-vmstate":              ObjectDbusVmstate{},
	"filter-buffer":             ObjectFilterBuffer{},
	"filter-dump":               ObjectFilterDump{},
	"filter-mirror":             ObjectFilterMirror{},
	"filter-redirector":         ObjectFilterRedirector{},
	"filter-replay":             ObjectFilterReplay{},
	"filter-rewriter":           ObjectFilterRewriter{},
	"input-barrier":             ObjectInputBarrier{},
	"input-linux":               ObjectInputLinux{},
	"iothread":                  ObjectIothread{},
	"main-loop":                 ObjectMainLoop{},
	"memory-backend-epc":        ObjectMemoryBackendEpc{},
	"memory-backend-file":       ObjectMemoryBackendFile{},
	"memory-backend-memfd":      ObjectMemoryBackendMemfd{},
	"memory-backend-ram":        ObjectMemoryBackendRam{},
	"pr-manager-helper":         ObjectPrManagerHelper{},
	"qtest":                     ObjectQtest{},
	"rng-builtin":               ObjectRngBuiltin{},
	"rng-egd":                   ObjectRngEgd{},
	"rng-random":                ObjectRngRandom{},
	"secret":                    ObjectSecret{},
	"secret_keyring":            ObjectSecretKeyring{},
	"sev-guest":                 ObjectSevGuest{},
	"thread-context":            ObjectThreadContext{},
	"throttle-group":            ObjectThrottleGroup{},
	"tls-creds-anon":            ObjectTlsCredsAnon{},
	"tls-creds-psk":             ObjectTlsCredsPsk{},
	"tls-creds-x509":            ObjectTlsCredsX509{},
	"tls-cipher-suites":         ObjectTlsCipherSuites{},
	"x-remote-object":           ObjectXRemoteObject{},
	"x-vfio-user-server":        ObjectXVfioUserServer{},
}
