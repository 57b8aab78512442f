package config

// The raw* types mirror the YAML file. Addresses, prefixes and durations are
// strings here so that validation, not the decoder, reports a bad value, with
// its path and a fix, and so that every bad value is reported at once.

type rawConfig struct {
	Log     rawLog      `mapstructure:"log"`
	Profile string      `mapstructure:"profile"`
	Node    rawNode     `mapstructure:"node"`
	Site    rawSite     `mapstructure:"site"`
	BGP     rawBGP      `mapstructure:"bgp"`
	Filters rawFilters  `mapstructure:"filters"`
	Uplinks []rawUplink `mapstructure:"uplinks"`
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
	Prefixes []string `mapstructure:"prefixes"`
}

type rawBGP struct {
	ListenPort      *int64 `mapstructure:"listen_port"`
	GracefulRestart *bool  `mapstructure:"graceful_restart"`
	RestartTime     string `mapstructure:"restart_time"`
}

type rawFilters struct {
	BogonPrefixes []string `mapstructure:"bogon_prefixes"`
	BogonASNs     []string `mapstructure:"bogon_asns"`
}

type rawUplink struct {
	Name      string       `mapstructure:"name"`
	Interface string       `mapstructure:"interface"`
	BGP       rawUplinkBGP `mapstructure:"bgp"`
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
	Communities      []string `mapstructure:"communities"`
	LargeCommunities []string `mapstructure:"large_communities"`
	MED              *int64   `mapstructure:"med"`
	Prepend          int64    `mapstructure:"prepend"`
}
