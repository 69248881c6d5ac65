module github.com/dowasm/dowasm/guest-sdk/go

go 1.24
