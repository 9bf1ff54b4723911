// Package walletpb holds the protobuf messages wallet grains exchange across
// cluster members (wallet.proto) and their conversions to and from the
// wallet package's types.
//
// wallet.pb.go is generated and committed, so building walletd never needs
// protoc. After changing wallet.proto, regenerate it with
//
//	go generate ./actors/walletpb
//
// which needs protoc (Debian: apt-get install protobuf-compiler) and
// protoc-gen-go at the google.golang.org/protobuf version of go.mod:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
package walletpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative wallet.proto
