package backend

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Keymint codes: 0 is success, 1 a request or lookup problem, 2 a refusal
// about the license or customer itself.
const (
	codeOK      = 0
	codeRequest = 1
	codeLicense = 2
)

// apiError is a contract answer other than 200. Handlers return it as an
// error and writeError renders it, so no handler writes its own body.
type apiError struct {
	status  int
	code    int
	message string
}

func (e *apiError) Error() string { return e.message }

var (
	errNotFound         = &apiError{http.StatusNotFound, codeRequest, "Not found"}
	errInvalidJSON      = &apiError{http.StatusBadRequest, codeRequest, "Invalid JSON"}
	errMissingParams    = &apiError{http.StatusBadRequest, codeRequest, "Missing required params"}
	errInvalidMax       = &apiError{http.StatusBadRequest, codeRequest, "Invalid maxActivations"}
	errInvalidExpiry    = &apiError{http.StatusBadRequest, codeRequest, "Invalid expiryDate"}
	errProductNotFound  = &apiError{http.StatusNotFound, codeRequest, "Product not found"}
	errKeyNotFound      = &apiError{http.StatusNotFound, codeRequest, "License key not found"}
	errDeviceNotFound   = &apiError{http.StatusNotFound, codeRequest, "Device not found"}
	errCustomerNotFound = &apiError{http.StatusNotFound, codeLicense, "Customer not found"}
	errCustomerExists   = &apiError{http.StatusConflict, codeLicense, "Customer with this email already exists"}
	errExpired          = &apiError{http.StatusForbidden, codeLicense, "License has expired"}
	errBlocked          = &apiError{http.StatusForbidden, codeLicense, "License is blocked"}
	errInactive         = &apiError{http.StatusForbidden, codeLicense, "License is not active"}
	errLimitReached     = &apiError{http.StatusForbidden, codeLicense, "Activation limit reached"}
)

// message is the body shared by every plain answer, success or failure.
type message struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
}

// writeError renders err as contract JSON. Anything that is not an
// *apiError is a bug in this package and becomes a 500 in the same shape.
func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{http.StatusInternalServerError, codeRequest, "Internal error"}
	}
	writeJSON(w, ae.status, message{Message: ae.message, Code: ae.code})
}

// writeJSON writes body as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		// Every body is a struct of strings, numbers and bools.
		status = http.StatusInternalServerError
		data = []byte(`{"message":"Internal error","code":1}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}

// legacyAnswer is a verbatim non-contract response of the legacy server.
type legacyAnswer struct {
	status      int
	contentType string
	location    string // set only for redirects
	body        string
}

func (a legacyAnswer) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	if a.location != "" {
		h.Set("Location", a.location)
	}
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

// legacyAnswers maps each broken key to the answer every route gives it.
var legacyAnswers = map[string]legacyAnswer{
	HTMLErrorKey: {
		status:      http.StatusBadGateway,
		contentType: "text/html",
		body: "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
			"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0 (Ubuntu)</center>\r\n" +
			"</body>\r\n</html>\r\n",
	},
	ForeignJSONKey: {
		status:      http.StatusUnprocessableEntity,
		contentType: "application/json",
		body:        `{"error":"license_key format invalid"}`,
	},
	PlainTextKey: {
		status:      http.StatusInternalServerError,
		contentType: "text/plain",
		body: "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms.\n" +
			"\tat com.zaxxer.hikari.pool.HikariPool.createTimeoutException(HikariPool.java:696)\n" +
			"\tat com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:197)\n" +
			"\tat com.keymint.license.LicenseRepository.findByKey(LicenseRepository.java:88)\n" +
			"\tat com.keymint.license.LicenseController.handle(LicenseController.java:142)\n" +
			"Caused by: org.postgresql.util.PSQLException: Connection to db-internal-7.corp:5432 refused. " +
			"Check that the hostname and port are correct and that the postmaster is accepting TCP/IP connections.\n" +
			"\tat org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl(ConnectionFactoryImpl.java:319)\n" +
			"\t... 42 more\n",
	},
	RedirectKey: {
		status:      http.StatusFound,
		contentType: "text/html",
		location:    "/login",
		body: "<html>\r\n<head><title>302 Found</title></head>\r\n<body>\r\n" +
			"<p>Your session has expired. <a href=\"/login\">Sign in</a> to continue.</p>\r\n" +
			"</body>\r\n</html>\r\n",
	},
}
