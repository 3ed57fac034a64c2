package cdc_test

const childEnv = "OVERTURE_CDC_CHILD"

func runChild() {}
