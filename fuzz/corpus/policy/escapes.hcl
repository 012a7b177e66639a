path "secret/data/quo\"te" { capabilities = ["read"] }
path "secret/data/tab\there/\u00e9" { capabilities = ["list"] }
path "/secret/leading-slash" : { capabilities : ["read"] }
