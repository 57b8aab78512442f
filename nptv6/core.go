package nptv6

import (
	"github.com/multihomed/multihomed/nptv6/rfc6296"
	"github.com/multihomed/multihomed/routing"
)

// Mapping is one NPTv6 prefix pair on one uplink; see routing.NPTMapping,
// where the type lives so that the controller can name it without linking
// the datapaths.
type Mapping = routing.NPTMapping

// Translator is one compiled Mapping; see rfc6296.Translator, where the
// address arithmetic lives so that the controller can use it without
// linking the datapaths.
type Translator = rfc6296.Translator

// NewTranslator validates m and precomputes its adjustment
// (rfc6296.NewTranslator).
func NewTranslator(m Mapping) (*Translator, error) { return rfc6296.NewTranslator(m) }

// Drop reasons (rfc6296's): packets RFC 6296 says must not be translated.
var (
	ErrSubnetFFFF = rfc6296.ErrSubnetFFFF
	ErrIIDAllOnes = rfc6296.ErrIIDAllOnes
	ErrZeroIID    = rfc6296.ErrZeroIID
)
