"""An independent SKS 1.00 issuer: drives `sks serve` over its wire protocol and checks every
MAC, attestation and stored result against the byte-layout specification."""
