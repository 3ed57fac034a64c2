package notification

// Bridges for the external test package (notification_test): the seeds that
// make events verifiable, as auth and the subscription function write them.
var (
	SeedAccount    = seedAccount
	SeedLink       = seedLink
	SeedPaidPeriod = paidPeriod
	UID            = uid
)

// Test configuration of the links.
const (
	TestBaseURL   = testBaseURL
	TestResetLink = testResetLink
)
