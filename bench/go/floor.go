package main

// The floor, called from Go: the request marshalled with encoding/json, POSTed
// by the C floor client (libcurl, one reused easy handle per goroutine) through
// cgo, the response unmarshalled with encoding/json.

/*
#cgo pkg-config: libcurl libcjson
#cgo CFLAGS: -O2 -I${SRCDIR}/..
#include <stdlib.h>
#include "floor.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Model     string    `json:"model"`
	Messages  []message `json:"messages"`
	MaxTokens int       `json:"max_tokens"`
}

type response struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

type floorClient struct {
	c   *C.floor_client
	url *C.char
}

func newFloorClient(url string) *floorClient {
	return &floorClient{c: C.floor_client_new(), url: C.CString(url)}
}

func (f *floorClient) close() {
	C.floor_client_free(f.c)
	C.free(unsafe.Pointer(f.url))
}

func (f *floorClient) chat(model string) (string, error) {
	body, err := json.Marshal(&request{Model: model, Messages: messages(), MaxTokens: 64})
	if err != nil {
		return "", err
	}
	body = append(body, 0)
	var resp *C.char
	var n C.size_t
	var status C.long
	rc := C.floor_post(f.c, f.url, (*C.char)(unsafe.Pointer(&body[0])), C.size_t(len(body)-1),
		&resp, &n, &status)
	if rc != 0 || status != 200 {
		return "", fmt.Errorf("floor: transfer %d, HTTP %d", int(rc), int(status))
	}
	var r response
	if err := json.Unmarshal(C.GoBytes(unsafe.Pointer(resp), C.int(n)), &r); err != nil {
		return "", err
	}
	if len(r.Choices) == 0 || r.Choices[0].Message.Content == nil {
		return "", fmt.Errorf("floor: no content")
	}
	return *r.Choices[0].Message.Content, nil
}
