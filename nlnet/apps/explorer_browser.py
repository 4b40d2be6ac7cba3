"""The attention explorer's page driven from a real browser: headless Chromium through
Selenium, as a user would use it (upload a file, pick a frame, click a point), reading
back what the page shows.

Used by the browser test and the click-latency benchmark; needs ``chromium`` and
``chromedriver`` (Debian: ``apt-get install chromium chromium-driver``) and
Selenium (the test requirements).
"""
import json
import os.path as osp
import shutil
import time

from .attention_explorer import DATA_ELEMENT

BROWSER_NAMES = ('chromium', 'chromium-browser', 'google-chrome')
DRIVER_NAMES = ('chromedriver', )
WINDOW = (1500, 1050)


def find_browser():
    """``((chromium, chromedriver), None)`` when both are on PATH, else ``(None, reason)``
    with a sentence naming what is missing."""
    browser = next((shutil.which(name) for name in BROWSER_NAMES if shutil.which(name)), None)
    driver = next((shutil.which(name) for name in DRIVER_NAMES if shutil.which(name)), None)
    if browser and driver:
        return (browser, driver), None
    missing = [what for what, found in (('chromium', browser), ('chromedriver', driver))
               if not found]
    return None, (f'{" and ".join(missing)} not found on PATH (Debian: apt-get install '
                  'chromium chromium-driver; .ci/run installs them)')


class ExplorerBrowser:
    """A headless Chromium on the explorer page at ``url``.

    Args:
        url (str): the page, e.g. ``http://127.0.0.1:7860/``.
        browser (str): the chromium executable.
        driver (str): the chromedriver executable.
        timeout (float): seconds to wait for the page to answer.
    """

    def __init__(self, url, browser, driver, timeout=30.0):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = browser
        # --no-sandbox: the sandbox cannot start as root or in most containers.
        for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                         '--disable-gpu', f'--window-size={WINDOW[0]},{WINDOW[1]}'):
            options.add_argument(argument)
        self.timeout = timeout
        self.driver = webdriver.Chrome(service=Service(driver), options=options)
        try:
            self.driver.get(url)
            self._wait(lambda: self._script(
                "return document.querySelector('#video-input input[type=file]') !== null"),
                'the page to load')
        except Exception:
            self.close()
            raise

    def _script(self, code, *args):
        return self.driver.execute_script(code, *args)

    def _wait(self, condition, what):
        deadline = time.monotonic() + self.timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f'waited {self.timeout:g} s for {what}')
            time.sleep(0.01)

    def shown_data(self):
        """The JSON of the attention the page shows (None before the first)."""
        text = self._script(f"var e = document.querySelector('#{DATA_ELEMENT} textarea');"
                            'return e ? e.value : null')
        return json.loads(text) if text else None

    def labels(self):
        """The predicted labels as the page lists them: [(name, score)], best first (the
        score is the value of the label's bar)."""
        bars = self._script("return [...document.querySelectorAll('#labels meter')]"
                            ".map(bar => [bar.getAttribute('aria-label'), bar.value])")
        return [(name, float(score)) for name, score in bars]

    def upload(self, video):
        """Upload ``video`` and wait until the page shows the attention of its first query.

        Returns:
            dict: the shown attention (:meth:`shown_data`).
        """
        before = self._script(f"var e = document.querySelector('#{DATA_ELEMENT} textarea');"
                              'return e ? e.value : null')
        self.driver.find_element('css selector', '#video-input input[type=file]').send_keys(
            osp.abspath(video))
        self._wait(lambda: self._script(
            f"var e = document.querySelector('#{DATA_ELEMENT} textarea');"
            'return e && e.value && e.value !== arguments[0]', before),
            f'the page to analyse {video}')
        return self.shown_data()

    def show_frame(self, index):
        """Move the frame slider to clip frame ``index`` and wait until that frame is shown
        (every picture the page sends has a file name, so a URL, of its own)."""
        from selenium.webdriver.common.keys import Keys

        if self._script("return document.querySelector('#frame input[type=range]').value") \
                == str(index):
            return
        before = self._frame_source()
        box = self.driver.find_element('css selector', '#frame input[type=number]')
        box.send_keys(Keys.CONTROL, 'a')
        box.send_keys(str(index), Keys.ENTER)
        self._wait(lambda: self._frame_source() not in (None, before),
                   f'the page to show frame {index}')

    def _frame_source(self):
        """The clickable frame's URL once loaded, else None."""
        return self._script("var i = document.querySelector('#query-frame img');"
                            'return i && i.complete && i.naturalWidth ? i.src : null')

    def click(self, y, x, scale):
        """Click model input pixel (``y``, ``x``) of the shown frame, drawn ``scale`` times
        enlarged, and wait for the page's answer.

        The click goes to the middle of the pixel's ``scale`` x ``scale`` square on the
        image, in whole viewport pixels, so a pixel drawn 2 or more times enlarged is hit
        exactly; one drawn at 1:1 may be missed by one where the image sits at half a
        screen pixel.

        Returns:
            tuple[dict, float]: the shown attention and the seconds from the click until
            the page showed it (measured in the browser, by ``performance.now``).
        """
        from selenium.webdriver.common.actions.action_builder import ActionBuilder

        # Element and geometry in one script: Gradio may swap the image between two calls.
        image, left, top, width, height, natural_width, natural_height = self._wait(
            lambda: self._script(
                "var i = document.querySelector('#query-frame img');"
                'if (!i || !i.complete || !i.naturalWidth) return null;'
                'var r = i.getBoundingClientRect();'
                'return [i, r.left, r.top, r.width, r.height, i.naturalWidth, i.naturalHeight]'),
            'the frame to be shown')
        # Gradio maps a click back to the image's own pixels as round((client - offset) /
        # ratio), the image fitted into its box (contain) and centred.
        ratio = min(width / natural_width, height / natural_height, 1)
        offset_x = left + (width - natural_width * ratio) / 2
        offset_y = top + (height - natural_height * ratio) / 2
        client_x = round(offset_x + (x * scale + scale // 2) * ratio)
        client_y = round(offset_y + (y * scale + scale // 2) * ratio)
        # Answered: the JSON has changed and the new heat-map sheet has loaded.
        self._script(
            f"var e = document.querySelector('#{DATA_ELEMENT} textarea');"
            "var sheet = () => document.querySelector('#attention-maps img');"
            'var before = [e.value, sheet() && sheet().src];'
            'window.__explorerAnswered = null; window.__explorerClicked = null;'
            "arguments[0].addEventListener('click', () => {"
            '  window.__explorerClicked = performance.now();'
            '  var poll = () => { var s = sheet();'
            '    if (e.value !== before[0] && s && s.src !== before[1] && s.complete) {'
            '      window.__explorerAnswered = performance.now(); } else {'
            '      requestAnimationFrame(poll); } };'
            '  requestAnimationFrame(poll); }, {once: true});', image)
        actions = ActionBuilder(self.driver)
        actions.pointer_action.move_to_location(client_x, client_y)
        actions.pointer_action.click()
        actions.perform()
        self._wait(lambda: self._script('return window.__explorerAnswered'),
                   f'the answer to a click at y={y}, x={x}')
        seconds = self._script(
            'return (window.__explorerAnswered - window.__explorerClicked) / 1000')
        return self.shown_data(), seconds

    def screenshot(self, path):
        """Save the window as a PNG at ``path``."""
        if not self.driver.save_screenshot(str(path)):
            raise RuntimeError(f'the browser did not save a screenshot to {path}')
        return str(path)

    def close(self):
        self.driver.quit()
