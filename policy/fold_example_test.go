package policy_test

import (
	"fmt"

	"github.com/keygate/keygate/policy"
)

// Spellings that some binder reads as productId fold onto one name.
func ExampleFoldName() {
	for _, name := range []string{"productId", "product\u0131d", "PRODUCT_ID", "\uff50roductId", "productIds"} {
		fmt.Printf("%s %s\n", policy.FoldName(name), fmt.Sprint(policy.SameName(name, "productId")))
	}
	// Output:
	// productid true
	// productid true
	// productid true
	// productid true
	// productids false
}

// Variants of a license key share one rate-limit bucket.
func ExampleBucketForm() {
	for _, key := range []string{"KEY-0001", "key-0001 ", "\uff2bEY-0001", "KEY-0001\u00a0"} {
		fmt.Printf("%q\n", policy.BucketForm(key))
	}
	// Output:
	// "key-0001"
	// "key-0001"
	// "key-0001"
	// "key-0001"
}
