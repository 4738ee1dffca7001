// The tests' own look into an Azure Blob store (Azurite), through Microsoft's SDK
// (@azure/storage-blob, installed beside Azurite by scripts/setup-s3.sh): what Vigil wrote is
// read back by another client than Vigil's.
//
//   node azure-blob.js create CONTAINER        creates the container (if missing)
//   node azure-blob.js get CONTAINER NAME      the blob's bytes on stdout; exit 3 if absent
//   node azure-blob.js list CONTAINER PREFIX   one JSON line per blob: {"name", "size"}
//
// The account comes from AZURE_STORAGE_CONNECTION_STRING; NODE_EXTRA_CA_CERTS trusts a test CA.
const { BlobServiceClient } = require("@azure/storage-blob");

async function main() {
  const [command, container, arg] = process.argv.slice(2);
  const service = BlobServiceClient.fromConnectionString(process.env.AZURE_STORAGE_CONNECTION_STRING);
  const client = service.getContainerClient(container);
  if (command === "create") {
    await client.createIfNotExists();
  } else if (command === "get") {
    const blob = client.getBlobClient(arg);
    if (!(await blob.exists())) process.exit(3);
    process.stdout.write(await blob.downloadToBuffer());
  } else if (command === "list") {
    for await (const b of client.listBlobsFlat({ prefix: arg || "" })) {
      process.stdout.write(JSON.stringify({ name: b.name, size: b.properties.contentLength }) + "\n");
    }
  } else {
    throw new Error(`unknown command ${command}`);
  }
}

main().catch((e) => {
  process.stderr.write(`azure-blob: ${e.message}\n`);
  process.exit(1);
});
