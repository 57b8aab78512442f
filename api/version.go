package api

import (
	"context"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/internal/buildinfo"
)

// GetVersion implements apiv1.MultihomedServer: the running daemon's build
// (the multihomed_build_info metric says the same).
func (s *Server) GetVersion(context.Context, *apiv1.GetVersionRequest) (*apiv1.GetVersionResponse, error) {
	return versionToProto(buildinfo.Read()), nil
}

func versionToProto(in buildinfo.Info) *apiv1.GetVersionResponse {
	return &apiv1.GetVersionResponse{Version: in.Version, Commit: in.Commit, Built: in.Date, GoVersion: in.GoVersion, Gobgp: in.GoBGP}
}
