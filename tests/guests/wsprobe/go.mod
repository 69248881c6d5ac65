module example.com/wsprobe

go 1.24

require github.com/dowasm/dowasm/guest-sdk/go v0.0.0

replace github.com/dowasm/dowasm/guest-sdk/go => ../../../guest-sdk/go
