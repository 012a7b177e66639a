path "secret/old/*" {
  policy = "write"
}
path "secret/ro" {
  policy = "read"
}
path "secret/none" {
  policy = "deny"
}
name = "legacy"
