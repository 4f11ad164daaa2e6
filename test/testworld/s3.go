package testworld

import (
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a versitygw S3 gateway over a temp folder, on 127.0.0.1.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	Region    string
	AccessKey string
	SecretKey string
	Version   string

	dir     string
	proc    *process
	buckets atomic.Int64
}

// StartS3 starts versitygw (built by `make test-assets`). Close stops it and removes its files.
func StartS3(ctx context.Context) (_ *S3Server, err error) {
	bin, err := binPath("DES_VERSITYGW", "bin/versitygw", "test-assets")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "des-s3-")
	if err != nil {
		return nil, err
	}
	s := &S3Server{dir: dir, Region: "us-east-1", AccessKey: "des-test-access", SecretKey: "des-test-secret-key"}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// `go install` builds do not stamp versitygw's own version string; the module version does.
	if info, verr := buildinfo.ReadFile(bin); verr == nil {
		s.Version = info.Main.Path + " " + info.Main.Version
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s.Endpoint = "http://" + hostPort(port)
	// --keep-alive: versitygw closes every connection after one request unless told otherwise, which no
	// production store (AWS S3, MinIO, HCP) does; without it every request of every test and benchmark
	// pays a TCP dial, and client-side costs are measured against a store nobody runs.
	cmd := exec.Command(bin, "--port", hostPort(port), "--region", s.Region, "--keep-alive", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	if s.proc, err = startProcess("versitygw", cmd); err != nil {
		return nil, err
	}
	client := s.Client()
	err = s.proc.waitReady(ctx, 30*time.Second, func(ctx context.Context) error {
		_, err := client.ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Client returns an aws-sdk-go-v2 S3 client for the server, path-style as self-hosted stores need.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CPUTime is the CPU versitygw has used so far (user and system).
func (s *S3Server) CPUTime() (time.Duration, error) { return s.proc.cpuTime() }

// Pid is versitygw's process id (a benchmark may pin it to CPUs of its own).
func (s *S3Server) Pid() int { return s.proc.cmd.Process.Pid }

// Close stops the server and deletes its folder.
func (s *S3Server) Close() {
	if s.proc != nil {
		s.proc.stop(syscall.SIGTERM, 5*time.Second)
	}
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// CreateBucket makes a new bucket with a unique name.
func (s *S3Server) CreateBucket(ctx context.Context) (string, error) {
	name := fmt.Sprintf("des-test-%d", s.buckets.Add(1))
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return "", fmt.Errorf("create bucket %s: %w", name, err)
	}
	return name, nil
}

// NewBucket creates a bucket for one test.
func (s *S3Server) NewBucket(t testing.TB) string {
	t.Helper()
	name, err := s.CreateBucket(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return name
}
