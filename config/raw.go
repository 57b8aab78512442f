package config

// The raw* types mirror the YAML file. Addresses, prefixes and durations are
// strings here so that validation, not the decoder, reports a bad value, with
// its path and a fix, and so that every bad value is reported at once.

type rawConfig struct {
	Log        rawLog        `mapstructure:"log"`
	Egress     rawEgress     `mapstructure:"egress"`
	Controller rawController `mapstructure:"controller"`
	IBGP       rawIBGP       `mapstructure:"ibgp"`
	Profile    string        `mapstructure:"profile"`
	Node       rawNode       `mapstructure:"node"`
	Site       rawSite       `mapstructure:"site"`
	BGP        rawBGP        `mapstructure:"bgp"`
	Filters    rawFilters    `mapstructure:"filters"`
	Uplinks    []rawUplink   `mapstructure:"uplinks"`
	API        rawAPI        `mapstructure:"api"`
	Metrics    rawMetrics    `mapstructure:"metrics"`
	NPTv6      rawNPTv6      `mapstructure:"nptv6"`
	DNS        *rawDNS       `mapstructure:"dns"`
	Debug      rawDebug      `mapstructure:"debug"`
}

type rawLog struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

type rawNode struct {
	RouterID string `mapstructure:"router_id"`
	ASN      int64  `mapstructure:"asn"`
}

type rawSite struct {
	Mode               string   `mapstructure:"mode"`
	Prefixes           []string `mapstructure:"prefixes"`
	InternalPrefix     string   `mapstructure:"internal_prefix"`
	InternalPrefixIPv4 string   `mapstructure:"internal_prefix_ipv4"`
}

type rawBGP struct {
	ListenPort      *int64     `mapstructure:"listen_port"`
	GracefulRestart *bool      `mapstructure:"graceful_restart"`
	RestartTime     string     `mapstructure:"restart_time"`
	Install         rawInstall `mapstructure:"install"`
}

type rawInstall struct {
	Table    *int64 `mapstructure:"table"`
	Protocol *int64 `mapstructure:"protocol"`
}

type rawFilters struct {
	BogonPrefixes []string `mapstructure:"bogon_prefixes"`
	BogonASNs     []string `mapstructure:"bogon_asns"`
}

type rawUplink struct {
	Name        string       `mapstructure:"name"`
	Interface   string       `mapstructure:"interface"`
	Gateway     string       `mapstructure:"gateway"`
	GatewayIPv4 string       `mapstructure:"gateway_ipv4"`
	Weight      *int64       `mapstructure:"weight"`
	BGP         rawUplinkBGP `mapstructure:"bgp"`
	Health      *rawHealth   `mapstructure:"health"`
	Degraded    rawDegraded  `mapstructure:"degraded"`
	DownAction  string       `mapstructure:"down_action"`
	PAPrefix    string       `mapstructure:"pa_prefix"`
	NAT44       string       `mapstructure:"nat44"`
}

type rawDegraded struct {
	Prepend     *int64   `mapstructure:"prepend"`
	Communities []string `mapstructure:"communities"`
	MED         *int64   `mapstructure:"med"`
}

type rawEgress struct {
	Mode     string `mapstructure:"mode"`
	Table    *int64 `mapstructure:"table"`
	Protocol *int64 `mapstructure:"protocol"`
	Metric   *int64 `mapstructure:"metric"`
}

type rawController struct {
	StartupWait string `mapstructure:"startup_wait"`
	HoldDown    string `mapstructure:"hold_down"`
	HoldDownMax string `mapstructure:"hold_down_max"`
	DrainGrace  string `mapstructure:"drain_grace"`
	Resync      string `mapstructure:"resync"`
	StateDir    string `mapstructure:"state_dir"`
	HistorySize *int64 `mapstructure:"history_size"`
	FailStatic  *bool  `mapstructure:"fail_static"`
}

type rawIBGP struct {
	LocalPrefUp       *int64        `mapstructure:"local_pref_up"`
	LocalPrefDegraded *int64        `mapstructure:"local_pref_degraded"`
	Advertise         string        `mapstructure:"advertise"`
	Peers             []rawIBGPPeer `mapstructure:"peers"`
}

type rawIBGPPeer struct {
	Neighbor     string `mapstructure:"neighbor"`
	LocalAddress string `mapstructure:"local_address"`
	Password     string `mapstructure:"password"`
	HoldTime     string `mapstructure:"hold_time"`
	ConnectRetry string `mapstructure:"connect_retry"`
	Role         string `mapstructure:"role"`
	ASN          *int64 `mapstructure:"asn"`
	Interface    string `mapstructure:"interface"`
}

type rawHealth struct {
	Targets        []any `mapstructure:"targets"`
	MinUp          int   `mapstructure:"min_up"`
	rawProbeTiming `mapstructure:",squash"`
	BurstInterval  string  `mapstructure:"burst_interval"`
	BurstProbes    int     `mapstructure:"burst_probes"`
	NoBursts       bool    `mapstructure:"no_bursts"`
	LossEnter      float64 `mapstructure:"degraded_loss_enter"`
	LossLeave      float64 `mapstructure:"degraded_loss_leave"`
	RTTEnter       string  `mapstructure:"degraded_rtt_enter"`
	RTTLeave       string  `mapstructure:"degraded_rtt_leave"`
	HoldDown       string  `mapstructure:"hold_down"`
	Mark           uint32  `mapstructure:"mark"`
	Table          int     `mapstructure:"table"`
	SourceV6       string  `mapstructure:"source_v6"`
	SourceV4       string  `mapstructure:"source_v4"`
	NoBindDevice   bool    `mapstructure:"no_bind_device"`
}

type rawTarget struct {
	Kind            string `mapstructure:"kind"`
	Address         string `mapstructure:"address"`
	Port            int    `mapstructure:"port"`
	URL             string `mapstructure:"url"`
	ExpectStatus    int    `mapstructure:"expect_status"`
	BodyContains    string `mapstructure:"body_contains"`
	FollowRedirects bool   `mapstructure:"follow_redirects"`
	TLSServerName   string `mapstructure:"tls_server_name"`
	CAFile          string `mapstructure:"ca_file"`
	Query           string `mapstructure:"query"`
	QueryType       string `mapstructure:"query_type"`
	ExpectAnswer    bool   `mapstructure:"expect_answer"`
	rawProbeTiming  `mapstructure:",squash"`
}

// rawProbeTiming is how often and how patiently to probe: an uplink's
// health section sets it for all its targets, a target may override it.
type rawProbeTiming struct {
	Interval     string `mapstructure:"interval"`
	Timeout      string `mapstructure:"timeout"`
	TimeoutFloor string `mapstructure:"timeout_floor"`
	Rise         int    `mapstructure:"rise"`
	Fall         int    `mapstructure:"fall"`
	Window       int    `mapstructure:"window"`
}

type rawUplinkBGP struct {
	PeerASN          int64    `mapstructure:"peer_asn"`
	Neighbor         string   `mapstructure:"neighbor"`
	LocalAddress     string   `mapstructure:"local_address"`
	NeighborIPv4     string   `mapstructure:"neighbor_ipv4"`
	LocalAddressIPv4 string   `mapstructure:"local_address_ipv4"`
	Password         string   `mapstructure:"password"`
	PasswordFile     string   `mapstructure:"password_file"`
	HoldTime         string   `mapstructure:"hold_time"`
	Keepalive        string   `mapstructure:"keepalive"`
	ConnectRetry     string   `mapstructure:"connect_retry"`
	TTLSecurity      bool     `mapstructure:"ttl_security"`
	Import           string   `mapstructure:"import"`
	MaxPrefixes      *int64   `mapstructure:"max_prefixes"`
	MaxPrefixRestart string   `mapstructure:"max_prefix_restart"`
	Communities      []string `mapstructure:"communities"`
	LargeCommunities []string `mapstructure:"large_communities"`
	MED              *int64   `mapstructure:"med"`
	Prepend          int64    `mapstructure:"prepend"`
}

type rawNPTv6 struct {
	Backend string `mapstructure:"backend"`
	PinPath string `mapstructure:"pin_path"`
}

type rawDNS struct {
	Zone   string       `mapstructure:"zone"`
	Server string       `mapstructure:"server"`
	TSIG   rawTSIG      `mapstructure:"tsig"`
	TTL    string       `mapstructure:"ttl"`
	Hosts  []rawDNSHost `mapstructure:"hosts"`
}

type rawTSIG struct {
	Name       string `mapstructure:"name"`
	Algorithm  string `mapstructure:"algorithm"`
	SecretFile string `mapstructure:"secret_file"`
}

type rawDNSHost struct {
	Name     string `mapstructure:"name"`
	Internal string `mapstructure:"internal"`
}
