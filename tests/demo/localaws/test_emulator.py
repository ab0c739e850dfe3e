from demo.localaws.emulator import LocalAws


def test_kms_round_trip_over_http(local_aws: LocalAws) -> None:
    assert local_aws.endpoint_url.startswith("http://127.0.0.1:")
    kms = local_aws.client("kms")
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"hello")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"hello"
