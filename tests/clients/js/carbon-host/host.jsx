// A developer's page that embeds Carbon Connect, Carbon's own file picker,
// unmodified, with confsync as its API: what README's "Embedding the file
// picker" shows. The page's server hands it a customer token (here through
// /token, as a developer's back end would after minting one with
// GET /auth/v1/access_token); apiURL points at confsync on another origin.
import React, { useState } from "react";
import { createRoot } from "react-dom/client";
import { CarbonConnect } from "carbon-connect";

const config = await (await fetch("/config.json")).json();
// `?files_tab=no`: the picker's accounts view instead of its files tab.
const showFilesTab = new URLSearchParams(location.search).get("files_tab") !== "no";

function Host() {
  const [open, setOpen] = useState(true);
  const [events, setEvents] = useState([]);
  const log = (kind) => (data) => {
    setEvents((all) => [...all, { kind, action: data.action, status: data.status, files: data.data?.files?.length ?? 0 }]);
    window.carbonEvents = [...(window.carbonEvents || []), { kind, data }];
  };
  return (
    <>
      <header className="host">
        <h1>Acme Notes</h1>
        <button id="open-picker" onClick={() => setOpen(true)}>Connect Confluence</button>
      </header>
      <CarbonConnect
        orgName="Acme Notes"
        brandIcon="/logo.svg"
        apiURL={config.apiURL}
        tokenFetcher={async () => (await fetch("/token")).json()}
        open={open}
        setOpen={setOpen}
        entryPoint="INTEGRATION_LIST"
        enabledIntegrations={[{ id: "CONFLUENCE", useCarbonFilePicker: true, syncFilesOnConnection: false, syncSourceItems: true, showFilesTab }]}
        onSuccess={log("success")}
        onError={log("error")}
        theme="light"
        dataSourcePollingInterval={3000}
      />
      <ul id="host-events">
        {events.map((e, i) => (
          <li key={i}>{`${e.kind} ${e.action} ${e.status} files=${e.files}`}</li>
        ))}
      </ul>
    </>
  );
}

createRoot(document.getElementById("root")).render(<Host />);
